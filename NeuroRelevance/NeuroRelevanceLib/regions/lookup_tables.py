"""Region-name lookup tables: label id -> region name.

Formats read (chosen by content, not only by extension):

- Slicer colour tables (``.txt`` / ``.ctbl``) and FreeSurfer LUTs (``FreeSurferColorLUT.txt``):
  ``id name R G B [A]`` lines, ``#`` comments; names may hold spaces.
- Plain ``id name`` lines (the AAL text files).
- CSV / TSV (any delimiter among ``, ; <tab>``) with a header naming an id column
  (``id``, ``index``, ``label``, ``labelvalue``, ``roiid``, ``value``) and a name column
  (``name``, ``roiname``, ``label``, ``structure``, ``region``), or two headerless columns id,name.

Label 0 is background everywhere and is dropped.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError

_COLOUR_LINE = re.compile(r"^\s*(-?\d+)\s+(.+?)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+))?\s*$")
_PLAIN_LINE = re.compile(r"^\s*(-?\d+)\s+(\S.*?)\s*$")
_ID_COLUMNS = ("id", "index", "labelvalue", "label_value", "roiid", "value", "label")
_NAME_COLUMNS = ("name", "roiname", "label_name", "labelname", "label", "region", "structure")


def read_lookup_table(path: str | Path) -> dict[int, str]:
    """Read a label lookup table file into ``{id: name}`` (background 0 dropped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No lookup table at {path}; check the path.")
    text = path.read_text(encoding="utf-8", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    if path.suffix.lower() in (".csv", ".tsv") or _looks_delimited(first):
        names = _read_delimited(text, path)
    else:
        names = _read_whitespace(text, path)
    names.pop(0, None)
    if not names:
        raise InputError(f"{path} holds no label entries; expected 'id name' lines or a CSV with id,name.")
    return names


def as_names(names: Mapping | str | Path | None) -> dict[int, str] | None:
    """Normalise a names argument (mapping or lookup-table path) into ``{int id: str name}``."""
    if names is None:
        return None
    if isinstance(names, (str, Path)):
        return read_lookup_table(names)
    if isinstance(names, Mapping):
        try:
            out = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as exc:
            raise InputError(f"Region names must map integer label ids to names ({exc}).") from exc
        out.pop(0, None)
        return out
    raise InputError(f"Region names must be a mapping id -> name or a lookup-table path, "
                     f"not {type(names).__name__}.")


def _looks_delimited(line: str) -> bool:
    return ("," in line or ";" in line or "\t" in line) and not _COLOUR_LINE.match(line.replace("\t", " "))


def _read_whitespace(text: str, path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _COLOUR_LINE.match(line) or _PLAIN_LINE.match(line)
        if match is None:
            raise InputError(f"{path}, line {number}: {line.strip()!r} is not 'id name [R G B A]'; "
                             "fix the line or pass a CSV with id,name columns.")
        name = match.group(2).strip()
        if match.re is _PLAIN_LINE:  # AAL3 style "169 Raphe_D 169": keep the name token only
            parts = name.split()
            if len(parts) > 1 and parts[-1].lstrip("-").isdigit():
                name = " ".join(parts[:-1])
        names[int(match.group(1))] = name
    return names


def _read_delimited(text: str, path: Path) -> dict[int, str]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO("\n".join(lines)), dialect))
    header = [cell.strip().lower() for cell in rows[0]]
    if _is_int(header[0]) and len(header) >= 2:
        id_col, name_col, body = 0, 1, rows
    else:
        found_id = _pick(header, _ID_COLUMNS, rows[1:], want_int=True)
        found_name = _pick(header, _NAME_COLUMNS, rows[1:], want_int=False, exclude=found_id)
        if found_id is None or found_name is None:
            raise InputError(f"{path}: cannot find an id and a name column in header {rows[0]}; "
                             "name them 'id' and 'name'.")
        id_col, name_col, body = found_id, found_name, rows[1:]
    names: dict[int, str] = {}
    for row in body:
        if len(row) <= max(id_col, name_col) or not _is_int(row[id_col]):
            raise InputError(f"{path}: row {row} has no integer id in column {id_col + 1}; fix the row.")
        names[int(float(row[id_col]))] = row[name_col].strip()
    return names


def _pick(header: list[str], candidates: tuple[str, ...], body: list[list[str]], want_int: bool,
          exclude: int | None = None) -> int | None:
    for candidate in candidates:
        for col, cell in enumerate(header):
            if cell != candidate or col == exclude:
                continue
            values = [row[col] for row in body if len(row) > col]
            if values and all(_is_int(v) for v in values) == want_int:
                return col
    return None


def _is_int(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return number == int(number)
