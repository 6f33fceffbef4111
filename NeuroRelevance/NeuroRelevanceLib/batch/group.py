"""Cohort results from the subjects' written files: subjects × regions tables, group maps, group gain.

Everything here reads what the subjects' tasks wrote (so resumed subjects count like new ones):

- per atlas, the long table (one row per subject and region, with id, group and covariates) and
  the subjects × regions table of relevance density;
- mean and standard deviation (sample, n − 1) relevance maps over all subjects and per group, on the
  first subject's grid (maps on another grid are resampled in physical space, and the sidecar says
  which); each with a sidecar naming its subjects;
- per atlas and group, the region gain against the reference group (seed 004), computed by
  ``regions.region_statistics`` from the written maps, with the comparison named.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..vocabulary import OptionNote
from .outputs import COHORT, atlas_tag

#: per-subject keys of a settings record that do not describe a group result
_SUBJECT_KEYS = ("inputs", "prediction", "conservation_error", "run_key", "created")


def cohort_record(record: dict) -> dict:
    """A subject's settings record without what is particular to that subject."""
    out = {k: v for k, v in record.items() if k not in _SUBJECT_KEYS}
    if isinstance(out.get("target"), dict):
        out["target"] = {k: v for k, v in out["target"].items() if k != "index"}
    return out


def region_tables(entries: list[dict], atlases: tuple, out: Path) -> tuple[dict, dict]:
    """Long and subjects × regions (density) tables per atlas; returns (atlas -> wide table, files)."""
    from ..regions import read_csv, write_csv

    wide_tables, files = {}, {}
    folder = out / COHORT
    for atlas in atlases:
        frames = []
        for entry in entries:
            path = entry["files"].get(f"regions_{atlas}")
            if path is None:
                continue
            table = read_csv(path)
            identity = _identity(entry, table.columns)
            for column, value in reversed(list(identity.items())):
                table.insert(0, column, value)
            frames.append(table)
        if not frames:
            continue
        long = pd.concat(frames, ignore_index=True)
        long.attrs = {k: v for k, v in frames[0].attrs.items() if k != "provenance"}
        long.attrs["n_subjects"] = len(frames)
        heads_columns = [c for c in identity if c != "id"]
        order = frames[0].sort_values("label")["name"].tolist()
        wide = long.pivot(index="id", columns="name", values="density").reindex(columns=order)
        heads = long.drop_duplicates("id").set_index("id")[heads_columns]
        wide = heads.join(wide).reindex([e["id"] for e in entries if e["id"] in wide.index]).reset_index()
        wide.attrs = dict(long.attrs, rank_by="density (subjects × regions)")
        folder.mkdir(parents=True, exist_ok=True)
        tag = atlas_tag(atlas)
        files[f"regions_{atlas}_long"] = _write(write_csv, long, folder / f"regions_{tag}_long.csv")
        files[f"regions_{atlas}_density"] = _write(write_csv, wide, folder / f"regions_{tag}_density.csv")
        wide_tables[atlas] = wide
    return wide_tables, files


def _identity(entry: dict, taken=()) -> dict:
    """id, group and covariates of a subject (a covariate named like a table column gets 'subject_')."""
    covariates = {(f"subject_{k}" if k in taken else k): v for k, v in entry.get("covariates", {}).items()}
    return {"id": entry["id"], "group": entry.get("group"), **covariates}


def _write(writer, table, path: Path) -> Path:
    from ..atomic import atomic_path

    with atomic_path(path) as staged:
        writer(table, staged)
    return path


def group_maps(entries: list[dict], out: Path, record: dict) -> tuple[dict, list[str]]:
    """Mean and standard-deviation maps over all subjects and per group; returns (name -> path, notes)."""
    from ..geometry import Grid
    from ..heatmap_files import write_heatmap
    from ..nifti import read_nifti
    from ..preprocessing import resample

    if not entries:
        return {}, []
    members = {"all": list(entries)}
    for entry in entries:
        if entry.get("group"):
            members.setdefault(f"group-{_safe(entry['group'])}", []).append(entry)
    belongs = {name: {e["id"] for e in group} for name, group in members.items()}
    reference: Grid | None = None
    sums: dict[str, list] = {}
    resampled: list[str] = []
    for entry in entries:
        values, grid = read_nifti(entry["files"]["relevance"], dtype=np.float64)
        if reference is None:
            reference = grid
        elif not grid.same_as(reference, atol=1e-3):
            values = resample(values, grid, reference).astype(np.float64)
            resampled.append(entry["id"])
        for name in members:
            if entry["id"] in belongs[name]:
                _welford(sums.setdefault(name, [0, np.zeros(reference.shape_kji), np.zeros(reference.shape_kji)]),
                         values)
    if reference is None:  # entries is not empty: the first map's grid is the reference
        raise ValueError("no subject map was read")
    folder = out / COHORT
    folder.mkdir(parents=True, exist_ok=True)
    files, notes = {}, []
    if resampled:
        notes.append(f"{len(resampled)} subject map(s) on another grid were resampled onto {entries[0]['id']}'s "
                     "grid for the group maps (are all scans registered to one template?)")
    for name, (n, mean, m2) in sums.items():
        ids = [e["id"] for e in members[name]]
        label = "all subjects" if name == "all" else f"group {members[name][0]['group']}"
        extra = {"subjects": ids, "n": n, "group": None if name == "all" else members[name][0]["group"],
                 "grid_of": entries[0]["id"], "resampled": [i for i in resampled if i in ids]}
        path, _ = write_heatmap(folder / f"{name}_mean.nii.gz", mean, reference, record,
                                f"raw relevance: mean over {n} subjects ({label})", {**extra, "statistic": "mean"})
        files[f"{name}_mean"] = path
        if n < 2:
            notes.append(f"no standard-deviation map for {label}: it has one subject")
            continue
        std = np.sqrt(m2 / (n - 1))
        path, _ = write_heatmap(folder / f"{name}_std.nii.gz", std, reference, record,
                                f"raw relevance: standard deviation (n - 1) over {n} subjects ({label})",
                                {**extra, "statistic": "standard deviation (n - 1)"})
        files[f"{name}_std"] = path
    return files, notes


def _welford(state: list, values: np.ndarray) -> None:
    """Add one map to a running count, mean and sum of squared deviations (numerically stable)."""
    state[0] += 1
    delta = values - state[1]
    state[1] += delta / state[0]
    state[2] += delta * (values - state[1])


def gain_tables(entries: list[dict], atlases: tuple, reference_group: str | None, out: Path, options,
                record: dict) -> tuple[dict, dict, list[str]]:
    """Region gain of every group against ``reference_group`` per atlas (``regions.region_statistics``).

    Returns ({(atlas, "G vs REF"): table}, {file key: path}, notes).
    """
    from ..provenance import regions_entry
    from ..regions import region_statistics, write_csv

    groups = sorted({e["group"] for e in entries if e.get("group")})
    if reference_group is None:
        return {}, {}, ([OptionNote("groups were given but no reference group: pass ",
                                    ("reference_group", None, "--reference-group"), " (a group's name) for the "
                                    "region gain")] if len(groups) > 1 else [])
    tables, files, notes = {}, {}, []
    for atlas in atlases:
        have = [e for e in entries if f"regions_{atlas}" in e["files"]]
        reference = [str(e["files"]["relevance"]) for e in have if e.get("group") == reference_group]
        for group in groups:
            if group == reference_group:
                continue
            members = [str(e["files"]["relevance"]) for e in have if e.get("group") == group]
            comparison = f"{group} vs {reference_group}"
            if not members or not reference:
                notes.append(f"no {atlas} gain for {comparison}: a group has no subject with a region table")
                continue
            try:
                table = region_statistics(members, atlas, reference=reference, min_overlap=options.min_overlap,
                                          min_region_voxels=options.min_region_voxels,
                                          min_region_mm3=options.min_region_mm3, gain_on=options.gain_on)
            except InputError as exc:
                notes.append(f"no {atlas} gain for {comparison}: {exc}")
                continue
            table.insert(0, "comparison", comparison)
            if table.attrs.get("gain_summary"):
                notes.append(OptionNote(f"{atlas} gain for {comparison}: ", table.attrs["gain_summary"]))
            table.attrs["provenance"] = {**record, "comparison": comparison, "regions": regions_entry(
                atlas, options.min_overlap, options.min_region_voxels, options.min_region_mm3)}
            name = f"gain_{atlas_tag(atlas)}_{_safe(group)}-vs-{_safe(reference_group)}"
            files[f"gain_{atlas}_{_safe(group)}-vs-{_safe(reference_group)}"] = _write(
                write_csv, table, out / COHORT / f"{name}.csv")
            tables[(atlas, comparison)] = table
    return tables, files, notes


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", str(name)).strip("_") or "group"
