"""Which other files a NRRD or MetaImage header makes the reader open.

Both formats may keep their voxels in another file named in the header (NRRD ``data file:``,
MetaImage ``ElementDataFile =``), any path at all. The whole header is parsed the way the readers
do (NRRD: every line up to the first empty one, ``#`` comments skipped; MetaImage: ``key = value``
or ``key : value`` lines up to ``ElementDataFile``, keys in any case) and the check fails closed:
a header whose end is not found within :data:`MAX_HEADER_BYTES` is refused.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError

MAX_HEADER_BYTES = 1 << 20
NRRD_SUFFIXES = (".nrrd", ".nhdr")
META_SUFFIXES = (".mha", ".mhd")


def referenced_data_files(path: Path) -> list[Path]:
    """The files ``path``'s header reads its voxels from (empty: inline data, or not a header)."""
    name = path.name.lower()
    if not name.endswith(NRRD_SUFFIXES + META_SUFFIXES):
        return []
    with open(path, "rb") as handle:
        head = handle.read(MAX_HEADER_BYTES + 1)
    nrrd = name.endswith(NRRD_SUFFIXES)
    lines, complete = _header_lines(head, nrrd)
    values = []
    for line in lines:
        key, value = _split(line, nrrd)
        if key not in ("datafile", "elementdatafile"):
            continue
        if not _exact(line, nrrd):  # a spelling the reader skips: it could hide the real line
            raise InputError(f"{path.name}: ambiguous line {line.strip()[:60]!r} in its header; "
                             "convert it to .nii.gz.")
        values.append(value)
        if not nrrd:
            break  # MetaImage: the reader stops at ElementDataFile; binary data may follow
    if not complete:
        raise InputError(f"{path.name}: no end of its header within {MAX_HEADER_BYTES >> 20} MB; "
                         "it cannot be checked. Convert it to .nii.gz.")
    if not nrrd and not values:
        raise InputError(f"{path.name}: no ElementDataFile in its header; it is not a MetaImage volume.")
    found = []
    for value in values:
        if value.upper() == "LOCAL":
            continue
        if value.upper().startswith("LIST") or "%" in value or not value:
            raise InputError(f"{path.name} reads its voxels from a list or pattern of files; convert "
                             "it to one self-contained volume (.nii.gz or .nrrd).")
        data = Path(value)
        found.append(data if data.is_absolute() else path.parent / data)
    return found


#: the data-file lines in the one spelling every reader takes. A line that only looks like one
#: (other case, spaces inside or before the key, odd whitespace) is refused rather than guessed,
#: so the first candidate line is the one the reader uses, whatever its exact parsing rules.
_EXACT = {True: re.compile(r"^(data file|datafile)[ \t]*:"),
          False: re.compile(r"^ElementDataFile[ \t]*[=:]")}


def _exact(line: str, nrrd: bool) -> bool:
    return _EXACT[nrrd].match(line) is not None


def _header_lines(head: bytes, nrrd: bool) -> tuple[list[str], bool]:
    """Header lines (decoded) and whether the header's end was seen."""
    text = head[:MAX_HEADER_BYTES].decode("latin-1")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    whole_file = len(head) <= MAX_HEADER_BYTES
    if nrrd:  # only a truly empty line ends a NRRD header (whitespace-only lines do not)
        for index, line in enumerate(lines):
            if index > 0 and line == "":
                return lines[:index], True
        return lines, whole_file  # a detached header may end at the end of the file
    for index, line in enumerate(lines):
        if _exact(line, nrrd):
            return lines[:index + 1], True
    return lines, whole_file


def _split(line: str, nrrd: bool) -> tuple[str, str]:
    """(normalised key, value) of a header line at its first separator; ("", "") otherwise.

    NRRD fields are ``key: value`` (``key:=value`` for key/value pairs), MetaImage fields
    ``Key = value`` or ``Key : value``; keys are compared without spaces and case.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return "", ""
    positions = [stripped.find(c) for c in ((":",) if nrrd else ("=", ":"))]
    positions = [p for p in positions if p > 0]
    if not positions:
        return "", ""
    cut = min(positions)
    return "".join(stripped[:cut].split()).lower(), stripped[cut + 1:].strip()
