"""Who is explained: subjects from a cohort table, scan paths, scene volumes or in-memory arrays.

A table (CSV, or TSV by its ``.tsv`` suffix) has a ``path`` column (one-channel models) or one
``path_<channel>`` column per channel of the model card; optional ``id`` and ``group``; every other
column is a covariate carried into the cohort tables. Relative paths are relative to the table's
folder. Without ``id``, subjects are named after their first file (made unique with the folders
above it). Table-level problems (columns, duplicate ids) are refused before anything runs; a bad
file is the subject's own failure, reported when it is explained.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .scans import ITK, NIFTI

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TABLE_SUFFIXES = (".csv", ".tsv")


@dataclass
class Subject:
    """One subject: an id, one input per model channel (a path or an (array KJI, Grid) pair), group, covariates."""

    id: str
    channels: list
    group: str | None = None
    covariates: dict = field(default_factory=dict)
    names: list = field(default_factory=list)     # how the inputs are named in records (file or node names)

    def describe(self) -> dict:
        """Plain data for summaries: id, group, covariates and the inputs."""
        return {"id": self.id, "group": self.group, **self.covariates,
                "inputs": [str(c) if not isinstance(c, tuple) else n
                           for c, n in zip(self.channels, self.names, strict=True)]}


def read_subjects(source: Any, channels: Sequence[str]) -> list[Subject]:
    """Subjects from a table path, a DataFrame, or a list of scans / scene volumes / Subjects."""
    import pandas as pd

    if isinstance(source, (str, Path)) and str(source).lower().endswith(TABLE_SUFFIXES):
        return _from_table(_read_table(Path(source)), Path(source).parent, channels, str(source))
    if isinstance(source, pd.DataFrame):
        return _from_table(source, Path.cwd(), channels, "the table")
    items = [source] if isinstance(source, (str, Path)) or hasattr(source, "GetID") else list(source)
    if not items:
        raise InputError("No subjects were given; pass scan files, a cohort table or scene volumes.")
    subjects = [_from_item(item, channels, index) for index, item in enumerate(items)]
    _unique_names(subjects)
    return subjects


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        raise InputError(f"No such cohort table: {path}; check the path.")
    try:
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str,
                           keep_default_na=False, comment=None)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable CSV/TSV table ({exc}).") from exc


def _path_columns(columns: Sequence[str], channels: Sequence[str], where: str) -> list[str]:
    if len(channels) == 1 and "path" in columns:
        return ["path"]
    wanted = [f"path_{c}" for c in channels]
    missing = [c for c in wanted if c not in columns]
    if missing:
        need = "a 'path' column" if len(channels) == 1 else f"columns {', '.join(wanted)}"
        raise InputError(f"{where} has no {', '.join(missing)} column; it needs {need} (one file per model "
                         f"channel); its columns are {', '.join(map(str, columns)) or 'none'}.")
    return wanted


def _from_table(table, base: Path, channels: Sequence[str], where: str) -> list[Subject]:
    table = table.copy()
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise InputError(f"{where} lists no subjects; add one row per subject.")
    path_columns = _path_columns(list(table.columns), channels, where)
    covariates = [c for c in table.columns if c not in path_columns and c not in ("id", "group")]
    subjects = []
    for index, row in table.iterrows():
        paths = [_resolve(row[c], base) for c in path_columns]
        given = str(row["id"]).strip() if "id" in table.columns else ""
        if given and not _SAFE.match(given):
            raise InputError(f"{where}, row {index + 1}: id {given!r} cannot name output files; use letters, "
                             "digits, '.', '_' and '-' only (e.g. sub-01).")
        group = str(row["group"]).strip() if "group" in table.columns else ""
        values = {c: _number(row[c]) for c in covariates}
        subjects.append(Subject(given, paths, group or None, values, [p.name for p in paths]))
    if "id" in table.columns and all(s.id for s in subjects):
        _refuse_duplicates([s.id for s in subjects], where)
    _unique_names(subjects)
    return subjects


def _resolve(value: Any, base: Path) -> Path:
    text = str(value).strip()
    if not text:
        return Path("")
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).absolute()  # workers may run in another folder


def _number(value: Any) -> Any:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _from_item(item: Any, channels: Sequence[str], index: int) -> Subject:
    if isinstance(item, Subject):
        return item
    parts = _channel_parts(item)
    if len(parts) != len(channels):
        raise InputError(f"Subject {index + 1} gives {len(parts)} input(s), but the model takes {len(channels)} "
                         f"channel(s) ({', '.join(channels)}); give one file per channel, comma-separated.")
    inputs: list[Any] = []  # paths, or (array_kji, Grid) pairs copied off the scene
    names: list[str] = []
    for part in parts:
        if hasattr(part, "GetID"):  # a scene volume: its voxels are copied now
            from ..mrml import volume_to_array

            inputs.append(volume_to_array(part))
            names.append(part.GetName())
        elif isinstance(part, tuple):
            inputs.append(part)
            names.append(f"array {index + 1}")
        else:
            path = Path(str(part).strip()).expanduser().absolute()
            inputs.append(path)
            names.append(path.name)
    return Subject("", inputs, None, {}, names)


def _channel_parts(item: Any) -> list:
    if isinstance(item, (str, Path)):
        return [p for p in str(item).split(",")] if "," in str(item) else [item]
    if isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "ijk_to_ras"):
        return [item]
    if isinstance(item, (list, tuple)):
        return list(item)
    return [item]


def _unique_names(subjects: list[Subject]) -> None:
    """Give every subject without an id one from its first input; refuse an input listed twice."""
    unnamed = [s for s in subjects if not s.id]
    firsts = [s.channels[0] for s in unnamed]
    paths = [str(Path(p).resolve()) for p in firsts if isinstance(p, Path) and str(p)]
    if len(paths) != len(set(paths)):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise InputError(f"{twice} is listed twice; list each subject once (or give them distinct ids).")
    ids = _with_formats(unnamed, [_derived_id(s, 0) for s in unnamed])
    depth = 0
    while len(ids) != len(set(ids)) and depth < 8:  # same names in several folders: add the folders
        depth += 1
        ids = [_derived_id(s, depth) for s in unnamed]
    for subject, subject_id in zip(unnamed, ids, strict=True):
        subject.id = subject_id
    _refuse_duplicates([s.id for s in subjects], "the subject list")


def _derived_id(subject: Subject, depth: int) -> str:
    first = subject.channels[0]
    if isinstance(first, Path) and str(first):
        stem = _stem(first.name)
        parents = [p.name for p in first.parents][:depth][::-1]
        text = "_".join(parents + [stem])
    else:
        text = subject.names[0] if subject.names else "subject"
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text or "subject"


def _with_formats(subjects: list[Subject], ids: list[str]) -> list[str]:
    """Ids that clash only because one name comes in several formats (a.nii.gz, a.nrrd) get the format
    ("a_nii-gz", "a_nrrd")."""
    clashing = {i for i in ids if ids.count(i) > 1}
    out = []
    for subject, subject_id in zip(subjects, ids, strict=True):
        first = subject.channels[0]
        if subject_id in clashing and isinstance(first, Path) and str(first):
            suffix = first.name[len(_stem(first.name)):].lstrip(".")
            subject_id = f"{subject_id}_{suffix.replace('.', '-')}" if suffix else subject_id
        out.append(subject_id)
    return out


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in NIFTI[::-1] + ITK + (".dcm",):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _refuse_duplicates(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for subject_id in ids:
        if subject_id in seen:
            raise InputError(f"{where} lists id {subject_id!r} twice; give every subject its own id: list the "
                             "subjects in a table (CSV) with an id column, or rename one of the files.")
        seen.add(subject_id)
