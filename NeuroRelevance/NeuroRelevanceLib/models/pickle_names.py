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
import copyreg
import os
import pickletools
import zipfile
from functools import cache
from pathlib import Path
from typing import IO

#: the globals a state dict may name when torch's own weights-only allow-list cannot be read (reviewed from torch
#: 2.13's ``_get_allowed_globals``: tensor rebuilders, storages, devices, torch.Size, plain containers; dtypes and
#: ``torch.*Storage`` classes by :func:`is_data_name`)
_REVIEWED = frozenset({
    "collections.OrderedDict", "collections.Counter", "builtins.set", "builtins.frozenset", "builtins.bytearray",
    "builtins.complex", "_codecs.encode", "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter",
    "torch._tensor._rebuild_from_type_v2", "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
    *(f"torch._utils._rebuild_{n}" for n in ("tensor", "tensor_v2", "tensor_v3", "parameter", "parameter_with_state",
                                             "qtensor", "sparse_tensor", "nested_tensor", "meta_tensor_no_storage",
                                             "device_tensor_from_numpy", "device_tensor_from_cpu_tensor"))})
_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
                     "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "complex32", "float8_e4m3fn",
                     "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "qint8", "quint8", "qint32"})
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_MAX_PICKLES = 8   # the legacy layout writes four pickles before the raw tensor bytes
_OBJECT = object()  # any value on the pickle stack that is not a string


@cache
def _allowed() -> frozenset[str]:
    """``module.name`` of every global torch's weights-only unpickler accepts (its allow-list: tensor
    rebuilders, storages, dtypes, ``torch.Size``, plain containers); empty where this torch has none to read."""
    try:
        from torch import _weights_only_unpickler as weights_only

        return frozenset(weights_only._get_allowed_globals())
    except Exception:  # noqa: BLE001 - another torch: the reviewed list alone
        return frozenset()


def is_data_name(name: str) -> bool:
    """Whether a state dict may name ``name``: a global torch's weights-only loading accepts, or one of the
    reviewed list (:func:`reviewed_data_name`)."""
    return name in _allowed() or reviewed_data_name(name)


def reviewed_data_name(name: str) -> bool:
    """Whether ``name`` is on the reviewed list of what a state dict names (tensors, storages, dtypes)."""
    if name in _REVIEWED:
        return True
    module, _, attribute = name.rpartition(".")
    return (module == "torch" and attribute in _DTYPES) or (
        module in ("torch", "torch.cuda") and attribute.endswith("Storage") and attribute.isalnum())


class _Bounded:
    """A stream that never reads past ``size`` bytes: a length field in a crafted pickle cannot make a read
    allocate more than the file holds."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream, self._left = stream, size

    def read(self, n: int | None = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(n) if n else b""
        self._left -= len(data)
        return data

    def readline(self, limit: int | None = -1) -> bytes:
        limit = self._left if limit is None or limit < 0 else min(limit, self._left)
        data = self._stream.readline(limit) if limit else b""
        self._left -= len(data)
        return data

    def next_byte(self) -> bytes:
        """The next byte without consuming it (b"" at the end)."""
        if not self._left:
            return b""
        return self._stream.peek(1)[:1]  # type: ignore[attr-defined]


def _pop(stack: list, marks: list[int], before: list) -> None:
    """Take an opcode's operands off the simulated stack (to the last mark where it takes a mark)."""
    if pickletools.markobject in before:
        del stack[marks.pop() if marks else 0:]
        before = before[:before.index(pickletools.markobject)]
    del stack[max(len(stack) - len(before), 0):]


def _globals(stream: _Bounded) -> list[str]:
    """The ``module.name`` of every global one pickle would import ("?" where it cannot be told), read by
    following the pickle machine's stack through every opcode (never by unpickling)."""
    names: list[str] = []
    stack: list[object] = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    for op, arg, _ in pickletools.genops(stream):  # type: ignore[arg-type]
        name = op.name
        if name in _STRINGS:
            stack.append(arg)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo.get(int(arg), _OBJECT))  # type: ignore[arg-type]
        elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1] if stack else _OBJECT  # type: ignore[arg-type]
        elif name == "DUP":
            stack.append(stack[-1] if stack else _OBJECT)
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "STACK_GLOBAL":
            module, attribute = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
            del stack[-2:]
            names.append(f"{module}.{attribute}" if isinstance(module, str) and isinstance(attribute, str) else "?")
            stack.append(_OBJECT)
        else:
            if name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif name in ("EXT1", "EXT2", "EXT4"):  # copyreg's extension registry: whatever it maps the code to
                found = copyreg._inverted_registry.get(int(arg))  # type: ignore[attr-defined,arg-type]
                names.append(".".join(found) if found else "?")
            _pop(stack, marks, op.stack_before)
            for item in op.stack_after:
                if item is pickletools.markobject:
                    marks.append(len(stack))
                else:
                    stack.append(_OBJECT)
    return [n.replace("__builtin__.", "builtins.") for n in names]


def _streams(path: Path, stack: contextlib.ExitStack) -> list[_Bounded]:
    """The pickle stream(s) of a torch.save file: the zip's ``data.pkl``, or the legacy file itself
    (read as it is parsed: a big file is not read into memory)."""
    if zipfile.is_zipfile(path):
        archive = stack.enter_context(zipfile.ZipFile(path))
        return [_Bounded(stack.enter_context(archive.open(info)), info.file_size)
                for info in archive.infolist() if info.filename.endswith("/data.pkl")]
    return [_Bounded(stack.enter_context(open(path, "rb")), os.path.getsize(path))]


def pickled_names(path: Path) -> list[str]:
    """Every global the file's pickle(s) name, in order; a pickle that ends before its STOP (damaged or crafted)
    adds "?": what its rest would import cannot be told."""
    names: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            for stream in _streams(path, stack):
                for count in range(_MAX_PICKLES):  # legacy: magic, protocol, sys info, object, storage keys
                    if count and stream.next_byte() != b"\x80":
                        break  # the legacy layout's raw tensor bytes follow its pickles
                    names += _globals(stream)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, IndexError, KeyError, TypeError):
        names.append("?")
    return names


def pickled_objects(path: Path) -> tuple[str, list[str]] | None:
    """``(what, names)`` when the file pickles more than tensors: what it is ("a pickled whole model
    (torch.save(model))" or "a pickled Python object") and the first names it would import; None for a
    file of tensors and containers only (a state dict)."""
    try:
        others = list(dict.fromkeys(n for n in pickled_names(path) if not is_data_name(n)))
    except Exception:  # noqa: BLE001 - this only words a refusal: a file it cannot read is an unknown pickle
        return "a pickle that could not be read", ["?"]
    if not others:
        return None
    model = any(n.startswith("torch.nn.") for n in others)
    what = "a pickled whole model (torch.save(model))" if model else "a pickled Python object"
    return what, others[:3]
