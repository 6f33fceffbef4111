"""Checks on the program a ``.pt2`` archive describes (``models/<name>.json``) before torch reads it.

``torch.export.load`` rebuilds an ``fx`` graph from this JSON, then generates and ``exec``-utes
Python source for it. What in the JSON reaches Python:

- node targets (``"torch.ops.aten.conv3d.default"``) are resolved by walking attributes from the
  ``torch``, ``operator`` and ``math`` modules, so a target can name any reachable callable;
- node and value names become identifiers in the generated source;
- ``expr_str`` sizes go to ``sympy.sympify`` (``eval``) and ``guards_code`` to ``exec``;
- strings copied into comments of the generated source (stack traces) could end the comment.

Allowed without trust: ATen and prims operators (not the ones that read or write files), the
``operator``/``math``/``torch.sym_*`` helpers torch's own verifier admits, a few control-flow
higher-order operators; identifier names; expressions :mod:`.expressions` accepts; strings
without control characters other than newline and tab.
"""
from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterator
from typing import Any

from .expressions import guard_ok, symbolic_expression_ok

#: ATen/prims operators that touch the file system
FILE_OPS = frozenset({"save", "from_file", "load_tensor"})
_BUILTINS = frozenset({
    "getitem", "add", "mul", "sub", "truediv", "ge", "le", "gt", "lt", "eq", "ne", "floordiv",
    "mod", "and_", "or_", "not_", "pow", "neg", "pos", "abs", "lshift", "rshift"})
_HELPERS = frozenset({
    "math.ceil", "math.floor", "math.trunc", "torch.sym_int", "torch.sym_float", "torch.sym_ite",
    "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_sqrt", "torch.sym_sum",
    "torch._C._set_grad_enabled", "torch.amp.autocast_mode._enter_autocast",
    "torch.amp.autocast_mode._exit_autocast"})
_HIGHER_ORDER = frozenset({"cond", "while_loop", "map_impl", "scan", "wrap_with_set_grad_enabled",
                           "wrap_with_autocast"})
_OP = re.compile(r"^torch\.ops\.(aten|prims)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)$")
_FQN_PART = re.compile(r"^[A-Za-z0-9_]+$")
_NAME_KEYS = ("name", "as_name")
_FQN_KEYS = ("parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn")
_NODE = re.compile(r"nodes\[\d+\]$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")


def target_ok(target: Any) -> bool:
    """True for an operator an untrusted exported program may call."""
    if not isinstance(target, str):
        return False
    op = _OP.match(target)
    if op:
        return op.group(2) not in FILE_OPS
    if target.startswith("_operator."):
        return target[len("_operator."):] in _BUILTINS
    if target.startswith("torch.ops.higher_order."):
        return target[len("torch.ops.higher_order."):] in _HIGHER_ORDER
    return target in _HELPERS


def _name_ok(value: Any) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value) \
        and not value.startswith("__")


def _fqn_ok(value: Any) -> bool:
    if value == "":
        return True
    return isinstance(value, str) and all(
        _FQN_PART.match(part) and not part.startswith("__") for part in value.split("."))


def _walk(obj: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every dict entry, recursively; lists add ``[i]`` to the path."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{path}[{i}]")


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def program_problems(text: str, member: str) -> list[str]:
    """What in one ``models/<name>.json`` could make torch run code or touch files."""
    try:
        program = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return [f"{member} is not valid JSON ({exc})"]
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        return [f"{member} does not describe an exported program"]
    problems: list[str] = []
    bad_text = next((s for s in _strings(program) if _CONTROL.search(s)), None)
    if bad_text is not None:
        problems.append(f"{member} holds a string with control characters ({bad_text[:60]!r}), "
                        "which could end a comment in the code torch generates")
    guards = program.get("guards_code") or []
    if not isinstance(guards, list) or not all(guard_ok(g) for g in guards):
        problems.append(f"{member}: guards_code is Python that torch would exec "
                        f"({str(guards)[:80]!r}); only input-size comparisons are accepted")
    for path, key, value in _walk(program["graph_module"]):
        if key == "target" and _NODE.search(path):
            if not target_ok(value):
                problems.append(f"{member}: node calls {str(value)[:80]!r}, which is not an ATen/prims "
                                "operator an untrusted file may call")
        elif key == "as_operator" and not target_ok(value):
            problems.append(f"{member}: an argument names the callable {str(value)[:80]!r}")
        elif key in _NAME_KEYS and not _name_ok(value):
            problems.append(f"{member}: the name {str(value)[:60]!r} is not a plain identifier "
                            "(names become Python source when torch rebuilds the module)")
        elif key in _FQN_KEYS and not _fqn_ok(value):
            problems.append(f"{member}: the module path {str(value)[:60]!r} is not a dotted name")
        elif key == "expr_str" and not symbolic_expression_ok(value):
            problems.append(f"{member}: the size expression {str(value)[:80]!r} is not arithmetic "
                            "on shape symbols (torch evaluates it with sympify)")
        elif key in ("custom_obj_values", "as_custom_obj") and value:
            problems.append(f"{member}: the program uses TorchScript custom objects, which torch "
                            "unpickles")
        elif key in ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values") \
                and isinstance(value, dict):
            problems.extend(f"{member}: the value name {str(k)[:60]!r} is not a plain identifier"
                            for k in value if not _name_ok(k))
    return list(dict.fromkeys(problems))
