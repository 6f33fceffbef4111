"""What a model file is, decided from its bytes (never from its name), and torch zip archives read
the way torch reads them.

torch writes TorchScript files, ``torch.export`` programs (``.pt2``) and ``torch.save`` pickles as
zip archives whose members sit under one root folder. :class:`Archive` lists and reads the members
with torch's own reader (``torch._C.PyTorchFileReader``, the one ``torch.jit.load`` and
``torch.export.load`` use) and refuses an archive whose table of contents Python's ``zipfile``
reads differently (duplicate names, members outside the root folder): what we inspect is then
what torch loads.
"""
from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

#: what :func:`sniff` can say about a file
FORMATS = ("pt2", "pt2-legacy", "torchscript", "torch-zip", "safetensors", "pickle")


@dataclass
class Archive:
    """The members of a torch zip archive, named relative to its root folder."""

    name: str                 # the file's name, for messages
    root: str
    names: list[str]
    _reader: Any             # torch's PyTorchFileReader (torch._C, untyped)

    def read(self, member: str) -> bytes:
        """A member's bytes, as torch reads them."""
        return bytes(self._reader.get_record(member))

    def text(self, member: str) -> str:
        try:
            return self.read(member).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.name}: member {member} is not UTF-8 text.") from exc


def suffix_of(path: str | Path) -> str:
    """The file suffix in lower case (``.PT2`` and ``.pt2`` are the same format)."""
    return Path(path).suffix.lower()


def zip_names(data: bytes) -> list[str] | None:
    """Member names as Python's zipfile reads them, or None when ``data`` is not a zip archive."""
    if not data.startswith(b"PK"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def open_archive(data: bytes, name: str) -> Archive:
    """Read a torch zip archive; refuse it when torch's and Python's readers disagree on its members."""
    import torch

    names = zip_names(data)
    if not names:
        raise InputError(f"{name} is not a zip archive.")
    if len(set(names)) != len(names):
        raise InputError(f"{name}: the archive lists a member twice; refusing an ambiguous archive.")
    root = names[0].split("/", 1)[0]
    if any(not n.startswith(root + "/") for n in names):
        raise InputError(f"{name}: archive members lie outside its root folder '{root}/'; this is "
                         "not an archive torch wrote.")
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        records = list(reader.get_all_records())
    except RuntimeError as exc:
        raise InputError(f"{name} is not a readable torch archive ({_first_line(exc)}).") from exc
    inner = sorted(n[len(root) + 1:] for n in names if n != root + "/")
    if sorted(records) != inner:
        raise InputError(f"{name}: torch and Python read different members from this archive; "
                         "refusing an ambiguous archive.")
    return Archive(name, root, records, reader)


def zip_format(names: list[str]) -> str:
    """The format of a zip archive from its member names (see :data:`FORMATS`)."""
    if "version" in names and "serialized_exported_program.json" in names:
        return "pt2-legacy"  # torch <= 2.6 layout: no root folder
    inner = {n.split("/", 1)[1] for n in names if "/" in n}
    if "archive_format" in inner or any(n.startswith("models/") for n in inner):
        return "pt2"
    if any(n.startswith("code/") for n in inner):
        return "torchscript"
    return "torch-zip"


def is_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file starts with its header length (8 bytes, little endian) and ``{``."""
    if len(head) < 10:
        return False
    (header,) = struct.unpack("<Q", head[:8])
    return 2 <= header <= size - 8 and head[8:9] == b"{"


def sniff(data: bytes) -> str:
    """One of :data:`FORMATS` for a file's bytes (a guess for plain pickles: the default)."""
    names = zip_names(data)
    if names is not None:
        return zip_format(names)
    return "safetensors" if is_safetensors(data[:16], len(data)) else "pickle"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
