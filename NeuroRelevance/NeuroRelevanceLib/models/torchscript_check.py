"""Inspect a TorchScript archive before ``torch.jit.load`` compiles and runs it.

A TorchScript file holds no Python: its pickles (``data.pkl``, ``constants.pkl``) are read by
TorchScript's own unpickler, which only rebuilds tensors, containers and the archive's own
TorchScript classes (a Python global such as ``builtins.exec`` is refused by torch). But the
file is a *program*: its ``code/`` is TorchScript source that torch compiles and runs, at load
(a class's ``__setstate__``) and at every call. That language has no ``import`` and cannot call
Python, yet a few of its built-in operators reach the outside world:

- ``torch.save(obj, filename)`` (``aten::save``) writes any file the user may write;
- ``torch.from_file(filename, ...)`` and ``debugprims::load_tensor`` read files;
- torchbind classes (``torch.classes.*``) and operators outside the ATen/prim/quantized
  namespaces run C++ code registered by other libraries.

Unless the file is trusted, an archive whose code names any of these is refused. The check
reads the source with Python's tokenizer (TorchScript's serialized code is Python syntax), so a
name in a string or a comment does not count and an unreadable source is refused.
"""
from __future__ import annotations

import io
import tokenize

from .archive import Archive
from .export_graph import FILE_OPS

#: operator namespaces TorchScript code may use without trust
SAFE_NAMESPACES = frozenset({"aten", "prim", "prims", "quantized", "_quantized", "mkldnn",
                             "onednn", "sparse", "quantization"})


def _chains(source: str) -> list[list[str]]:
    """Dotted name chains (``torch.ops.aten.add``) in ``source``, from Python's tokenizer."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type in (tokenize.NAME, tokenize.OP)]
    chains, i = [], 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == tokenize.NAME and not (i > 0 and tokens[i - 1].string == "."):
            chain = [tok.string]
            while i + 2 < len(tokens) and tokens[i + 1].string == "." \
                    and tokens[i + 2].type == tokenize.NAME:
                chain.append(tokens[i + 2].string)
                i += 2
            chains.append(chain)
        elif tok.type == tokenize.NAME:  # an attribute after a call or subscript: x().save
            chains.append(["", tok.string])
        i += 1
    return chains


def _chain_problem(chain: list[str]) -> str | None:
    attributes = chain[1:]
    dotted = ".".join(c for c in chain if c)
    if any(a in FILE_OPS for a in attributes):
        return f"{dotted} reads or writes files"
    if "classes" in attributes and "torch" in chain:
        return f"{dotted} is a torchbind class (C++ code from another library)"
    for start in range(len(chain) - 1):
        if chain[start] == "ops" and chain[start + 1] not in SAFE_NAMESPACES:
            return f"{dotted} is an operator outside the ATen/prim namespaces"
    return None


def torchscript_problems(archive: Archive) -> list[str]:
    """Every reason not to hand this archive to ``torch.jit.load`` without trust (empty: safe)."""
    problems: list[str] = []
    sources = [n for n in archive.names if n.endswith(".py")]
    if not sources:
        problems.append("the archive holds no TorchScript code")
    for name in sources:
        try:
            chains = _chains(archive.text(name))
        except (tokenize.TokenError, IndentationError, SyntaxError, ValueError) as exc:
            problems.append(f"{name} cannot be read ({exc})")
            continue
        for chain in chains:
            problem = _chain_problem(chain)
            if problem:
                problems.append(f"{name}: {problem}")
    return list(dict.fromkeys(problems))
