"""What a ``torch.save`` file would import if it were unpickled, read from its opcodes (``pickletools``),
never by unpickling it.

A state dict names only torch's tensor rebuilders, storages and ``collections.OrderedDict``; a whole
model saved with ``torch.save(model)`` names its classes (``__main__.Net``, ``torch.nn.modules.conv.
Conv3d``). Both the zip layout (``<root>/data.pkl``) and the legacy layout (a sequence of pickles,
``_use_new_zipfile_serialization=False``) are read. Used only to word a refusal well: loading still goes
through :mod:`.model_files` / :mod:`.weights`.
"""
from __future__ import annotations

import contextlib
import pickletools
import re
import zipfile
from pathlib import Path
from typing import IO

#: globals of tensors and plain containers (a state dict names only these); any other is a class or function
_DATA_NAMES = re.compile(r"collections\.OrderedDict|torch\._utils\._rebuild_\w+|torch\.\w*Storage"
                         r"|torch\.storage\.\w+|torch\.device|builtins\.(set|frozenset|bytearray)|_codecs\.encode")
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_MAX_PICKLES = 8   # the legacy layout writes four pickles before the raw tensor bytes


def _globals(stream: IO[bytes]) -> list[str]:
    """The ``module.name`` of every GLOBAL / STACK_GLOBAL in one pickle ("?" where it cannot be told)."""
    names: list[str] = []
    strings: list[object] = []
    memo: dict[int, object] = {}
    last: object = None
    for op, arg, _ in pickletools.genops(stream):
        if op.name in _STRINGS:
            last = arg
            strings.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            last = memo.get(arg if isinstance(arg, int) else -1)
            strings.append(last)
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg if isinstance(arg, int) else -1] = last
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
        elif op.name == "GLOBAL":
            names.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            module, name = (strings[-2:] if len(strings) >= 2 else [None, None])
            names.append(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "?")
        elif op.name != "FRAME":
            last = None
    return [n.replace("__builtin__.", "builtins.") for n in names]


def _streams(path: Path, stack: contextlib.ExitStack) -> list[IO[bytes]]:
    """The pickle stream(s) of a torch.save file: the zip's ``data.pkl``, or the legacy file itself
    (read as it is parsed: a big file is not read into memory)."""
    if zipfile.is_zipfile(path):
        archive = stack.enter_context(zipfile.ZipFile(path))
        return [stack.enter_context(archive.open(n)) for n in archive.namelist() if n.endswith("/data.pkl")]
    return [stack.enter_context(open(path, "rb"))]


def pickled_names(path: Path) -> list[str]:
    """Every global the file's pickle(s) name, in order (an unreadable rest is passed over)."""
    names: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            for stream in _streams(path, stack):
                for count in range(_MAX_PICKLES):  # legacy: magic, protocol, sys info, object, storage keys
                    if count and stream.peek(1)[:1] != b"\x80":  # type: ignore[attr-defined]
                        break  # the legacy layout's raw tensor bytes follow its pickles
                    names += _globals(stream)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, IndexError):
        pass  # not a pickle past this point (a damaged file): what was read so far
    return names


def pickled_objects(path: Path) -> tuple[str, list[str]] | None:
    """``(what, names)`` when the file pickles more than tensors: what it is ("a pickled whole model
    (torch.save(model))" or "a pickled Python object") and the first names it would import; None for a
    file of tensors and containers only (a state dict)."""
    others = list(dict.fromkeys(n for n in pickled_names(path) if not _DATA_NAMES.fullmatch(n)))
    if not others:
        return None
    model = any(n.startswith("torch.nn.") for n in others)
    what = "a pickled whole model (torch.save(model))" if model else "a pickled Python object"
    return what, others[:3]
