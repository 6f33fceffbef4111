"""Which server files the web viewer may read, and what an upload must look like.

The server runs on the user's machine but answers a browser: every path typed into the page is
resolved (symbolic links included) and must lie inside one of the folders the server was started
with; an upload is size-checked, given a safe file name and read in a private temporary folder.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from ..mrml.storage import VOLUME_SUFFIXES
from .headers import referenced_data_files

#: largest upload accepted (bytes); a 1 mm float32 brain is ~30 MB, a 0.5 mm one ~250 MB
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MODEL_SUFFIXES = (".json", ".pt", ".pth", ".ts", ".pt2")


@dataclass(frozen=True)
class Upload:
    """One file sent by the browser."""

    name: str
    content: bytes

    @classmethod
    def from_client(cls, item: dict) -> Upload:
        """The dict a trame file input sends (``name``, ``content`` as bytes, ``size``...)."""
        if not isinstance(item, dict) or "name" not in item:
            raise InputError("The upload arrived incomplete; choose the file again.")
        content = item.get("content")
        if isinstance(content, list) and all(isinstance(c, (bytes, bytearray)) for c in content):
            content = b"".join(content)  # chunked transfer: a list of byte strings
        if not isinstance(content, (bytes, bytearray)):
            raise InputError(f"{item.get('name')}: the upload arrived without its content; "
                             "choose the file again.")
        return cls(str(item["name"]), bytes(content))


class FileGate:
    """Resolves user-typed paths inside the allowed folders and vets uploads."""

    def __init__(self, roots: Iterable[str | Path], max_upload: int = MAX_UPLOAD_BYTES) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        missing = [str(r) for r in self.roots if not r.is_dir()]
        if missing:
            raise InputError(f"Data folder(s) not found: {', '.join(missing)}. Pass existing "
                             "folders with --data.")
        self.max_upload = max_upload

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots) or "(none)"

    def resolve(self, typed: str, suffixes: tuple[str, ...], kind: str = "file") -> Path:
        """The real path of ``typed`` if it is an existing file inside an allowed folder."""
        text = typed.strip() if isinstance(typed, str) else ""
        if not text:
            raise InputError(f"Type the path of a {kind} on the server.")
        try:
            return self._resolve(text, suffixes, kind)
        except InputError:
            raise
        except (ValueError, OSError, RuntimeError) as exc:  # NUL bytes, overlong names, ~nobody
            raise InputError(f"{text[:80]!r} is not a usable path ({exc}); type a file inside "
                             f"{self.describe()}.") from None

    def _resolve(self, text: str, suffixes: tuple[str, ...], kind: str) -> Path:
        raw = Path(text).expanduser()
        candidates = [raw] if raw.is_absolute() else [root / raw for root in self.roots]
        escaped = None
        for candidate in candidates:
            path = candidate.resolve()
            if not path.is_file():
                continue
            if not self.allows(path):
                escaped = escaped or path  # exists, but a link or '..' leads out of the folders
                continue
            if not path.name.lower().endswith(suffixes):
                raise InputError(f"{path.name}: not a {kind} ({', '.join(suffixes)}).")
            return path
        if escaped is not None or (raw.is_absolute() and not self.allows(raw.resolve())):
            raise InputError(f"{text} lies outside the folders this server may read "
                             f"({self.describe()}); restart it with --data <folder> to allow more.")
        raise InputError(f"No such {kind}: {text} (looked in {self.describe()}).")

    def check_data_files(self, path: Path) -> list[Path]:
        """A header file may only name voxel files inside the allowed folders; returns them."""
        found = referenced_data_files(path)
        for data in found:
            if not self.allows(data.resolve()):
                raise InputError(f"{path.name} takes its voxels from {data}, outside the folders this "
                                 f"server may read ({self.describe()}).")
        return found

    def allows(self, path: Path) -> bool:
        return any(path == root or root in path.parents for root in self.roots)

    def check_model(self, card) -> None:
        """A card read from an allowed folder must not point at weights outside them."""
        if card.path is not None and not self.allows(card.weights_path):
            raise InputError(f"The card {Path(card.path).name} names weights outside the allowed "
                             f"folders ({card.weights_path}); keep them beside the card.")

    def save_upload(self, upload: Upload, folder: Path) -> Path:
        """Write a vetted upload into ``folder`` under a safe name; returns its path."""
        receiver = self.receive_upload(upload.name, folder)
        receiver.write(upload.content)
        return receiver.finish()

    def receive_upload(self, name: str, folder: Path) -> UploadReceiver:
        """Start receiving an upload called ``name`` into ``folder`` (name checked now, bytes later)."""
        return UploadReceiver(name, folder, self.max_upload)


class UploadReceiver:
    """An upload written to disk block by block, refused as soon as it passes the size limit.

    The name is checked before any byte is accepted; nothing is kept in memory beyond one block;
    a refused or aborted upload leaves no file (and no folder this receiver made).
    """

    def __init__(self, name: str, folder: Path, max_bytes: int) -> None:
        self.name = str(name)
        safe = safe_name(self.name)
        if not safe.lower().endswith(VOLUME_SUFFIXES):
            raise InputError(f"{self.name}: not a volume file; upload one of {', '.join(VOLUME_SUFFIXES)}.")
        if safe.lower().endswith((".nhdr", ".mhd")):
            raise InputError(f"{self.name} is a header whose voxels live in another file; upload "
                             "a single-file format (.nii, .nii.gz, .nrrd, .mha).")
        self.folder, self.path, self.max_bytes = Path(folder), Path(folder) / safe, int(max_bytes)
        self.size = 0
        self._handle: BinaryIO | None = None
        self._made_folder = False

    def too_big(self, size: int) -> InputError:
        return InputError(f"{self.name} is {size / 2**20:.0f} MB or more; uploads are limited to "
                          f"{self.max_bytes / 2**20:.0f} MB. Put the file in a --data folder and type "
                          "its path instead.")

    def write(self, block: bytes) -> None:
        """Append ``block``; refuses (and removes what was written) past the limit."""
        if self.size + len(block) > self.max_bytes:
            self.abort()
            raise self.too_big(self.size + len(block))
        if not block:
            return
        if self._handle is None:
            self._made_folder = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "wb")  # noqa: SIM115  (kept open across write() calls; closed in finish/abort)
        self._handle.write(block)
        self.size += len(block)

    def finish(self) -> Path:
        """Close the file and check it is a self-contained volume; returns its path."""
        if self._handle is None:
            raise InputError(f"{self.name} is empty.")
        self._handle.close()
        try:
            if referenced_data_files(self.path):
                raise InputError(f"{self.name} takes its voxels from another file; upload a "
                                 "self-contained volume (NIfTI, or .nrrd/.mha with the data inside).")
        except InputError:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop what was received."""
        if self._handle is not None:
            self._handle.close()
            self.path.unlink(missing_ok=True)
            if self._made_folder:
                with contextlib.suppress(OSError):  # not empty: something else is in it, keep it
                    self.folder.rmdir()
        self._handle = None


def safe_name(name: str, max_length: int = 120) -> str:
    """The last path component of ``name`` with only ``[A-Za-z0-9._-]`` (never empty or hidden).

    Known volume suffixes are lower-cased (ITK's readers only know ``.mha``, not ``.MHA``) and
    the stem is shortened to keep the name under ``max_length`` characters.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "upload"
    suffix = next((s for s in sorted(VOLUME_SUFFIXES, key=len, reverse=True)
                   if cleaned.lower().endswith(s)), "")
    stem = cleaned[:len(cleaned) - len(suffix)] if suffix else cleaned
    return (stem[:max_length - len(suffix)] or "upload") + suffix
