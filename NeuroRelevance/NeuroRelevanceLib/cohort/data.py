"""Cohort inputs: NIfTI volumes with targets, from a folder or a CSV, checked for one shared grid."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..geometry import Grid

TARGETS_FILE = "targets.csv"


@dataclass
class CohortTable:
    """Volume paths, targets, the shared :class:`Grid` and optional split labels."""

    paths: list[Path]
    targets: np.ndarray
    grid: Grid
    splits: list[str] | None = None


def read_cohort(source: str | Path, path_column: str = "path", target_column: str = "target") -> CohortTable:
    """Read a cohort from a CSV (columns ``path``, ``target``, optional ``split``) or a folder
    holding NIfTI files and ``targets.csv`` (same columns; paths relative to the folder)."""
    src = Path(source)
    if src.is_dir():
        csv = src / TARGETS_FILE
        if not csv.is_file():
            raise InputError(f"folder {src} has no {TARGETS_FILE}; add one with columns "
                             f"'{path_column}' and '{target_column}'.")
        base = src
    elif src.is_file():
        csv, base = src, src.parent
    else:
        raise InputError(f"no such cohort folder or CSV: {src}.")
    table = _read_table(csv, path_column, target_column)
    for col in (path_column, target_column):
        if col not in table.columns:
            raise InputError(f"{csv} has no column {col!r} (columns: {', '.join(table.columns)}); "
                             "name the columns path and target or pass the column names.")
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in table[path_column].astype(str)]
    targets = pd.to_numeric(table[target_column], errors="coerce").to_numpy(float)
    bad = [str(p) for p, t in zip(paths, targets, strict=True) if not np.isfinite(t)]
    if bad:
        raise InputError(f"targets missing or not numeric for {len(bad)} subject(s), e.g. {bad[0]}; "
                         "give a number for every subject.")
    splits = None
    if "split" in table.columns:
        splits = [str(s).strip().lower() for s in table["split"]]
        unknown = sorted(set(splits) - {"train", "val", "test"})
        if unknown:
            raise InputError(f"unknown split label(s) {unknown} in {csv}; use train, val or test.")
    return CohortTable(paths, targets, check_grids(paths), splits)


def _read_table(csv: Path, path_column: str, target_column: str) -> pd.DataFrame:
    """The cohort table, or one clear error when ``csv`` is no text table (a NIfTI, a model, any binary file)."""
    expected = (f"give a folder with {TARGETS_FILE} (and the volumes) or a CSV table with columns "
                f"{path_column},{target_column}[,split].")
    try:
        with open(csv, "rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        raise InputError(f"cohort table {csv} cannot be read ({exc.strerror or exc}).") from None
    if b"\x00" in head or head[:2] == b"\x1f\x8b":  # NUL bytes or gzip: a binary file (a .nii.gz scan, a model)
        raise InputError(f"{csv} is a binary file, not a cohort table: {expected}")
    try:
        return pd.read_csv(csv, encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{csv} is not UTF-8 text, so not a cohort table: {expected}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{csv} cannot be read as a CSV table ({str(exc).strip()[:120]}): {expected}") from None


def check_grids(paths: Sequence[Path], atol: float = 1e-4) -> Grid:
    """Check every volume exists and shares the first one's shape and affine (headers only); their :class:`Grid`."""
    if not paths:
        raise InputError("the cohort lists no volumes; add at least one subject.")
    from ..nifti import read_nifti_grid

    first: Grid | None = None
    for p in paths:
        if not Path(p).is_file():
            raise InputError(f"volume {p} does not exist; fix the path in the cohort table.")
        grid = read_nifti_grid(p)
        if first is None:
            first = grid
        elif not grid.same_as(first, atol=atol):
            raise InputError(f"volume {p} has grid {grid.shape_kji} / affine differing from the first volume "
                             f"({first.shape_kji}); resample all volumes onto one grid (e.g. MNI) first.")
    if first is None:  # unreachable: paths is not empty
        raise InputError("the cohort lists no volumes; add at least one subject.")
    return first


def load_volume(path: str | Path) -> np.ndarray:
    """Voxel array of a NIfTI volume in (k, j, i) order, float32 (``nifti.read_nifti``; a header declaring labels is
    refused); NaN checks happen later."""
    from ..nifti import read_nifti

    return read_nifti(path, dtype=np.float32, scan=True)[0]


def split_indices(targets: np.ndarray, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic train/val/test split preserving the target distribution: subjects sorted by
    target, cut into blocks of 10, each block's slots shuffled (seeded) and dealt by ``fractions``."""
    f = np.asarray(fractions, float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0) or f[0] == 0 or f[1] == 0:
        raise InputError(f"split fractions must be three non-negative numbers summing to 1 with train "
                         f"and validation > 0, got {tuple(fractions)}.")
    counts = np.round(f * 10).astype(int)
    counts[0] = 10 - counts[1] - counts[2]
    slots = np.repeat(np.arange(3), counts)
    rng = np.random.default_rng(seed)
    order = np.argsort(np.asarray(targets, float), kind="stable")
    labels = np.empty(len(order), dtype=int)
    for s in range(0, len(order), 10):
        block = order[s:s + 10]
        labels[block] = rng.permutation(slots)[:len(block)]
    return {name: np.flatnonzero(labels == k) for k, name in enumerate(("train", "val", "test"))}
