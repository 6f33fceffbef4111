"""Heatmap files: raw relevance by default, the displayed (filtered) map only under its own name.

Each NIfTI gets a short ``descrip`` in its header (what it holds, method, target, model) and a JSON
sidecar beside it (``heatmap.nii.gz`` → ``heatmap.json``) with the run's whole settings record.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import InputError
from .geometry import Grid


def sidecar_path(path: str | Path) -> Path:
    """``x.nii.gz`` → ``x.json`` (BIDS style)."""
    path = Path(path)
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def write_heatmap(path: str | Path, values_kji: np.ndarray, grid: Grid, record: Mapping | None,
                  values: str = "raw relevance", extra: Mapping | None = None) -> tuple[Path, Path]:
    """Write ``values_kji`` on ``grid`` as NIfTI with a header description and a JSON sidecar.

    ``values`` says what the voxels hold ("raw relevance" or "displayed: pass 0.30–1.00"); ``extra``
    adds top-level sidecar entries (e.g. the subjects of a group mean). Both files are written
    atomically (see :mod:`.atomic`). Returns the NIfTI and sidecar paths. A wrong shape is refused
    before anything is written.
    """
    from .nifti import write_nifti
    from .provenance import nifti_description

    values_kji = np.asarray(values_kji, dtype=np.float32)
    if values_kji.shape != grid.shape_kji:
        raise InputError(f"The heatmap has shape {values_kji.shape} but its grid is {grid.shape_kji} (KJI).")
    kind = "raw" if values.startswith("raw") else "displayed"
    description = nifti_description(record, kind) if record else f"NeuroRelevance {kind} relevance"
    path, sidecar = Path(path), sidecar_path(path)
    text = json.dumps({"values": values, "units": "relevance (a.u.)", "record": dict(record or {}),
                       **dict(extra or {})}, indent=2, ensure_ascii=False, default=str) + "\n"
    # both files are staged under temporary names and renamed only when both are written (sidecar
    # first): an interrupted or failed write leaves the earlier pair, never a half-written one
    with atomic_path(path) as staged_map, atomic_path(sidecar) as staged_sidecar:
        write_nifti(staged_map, values_kji, grid, description=description, intent_name=f"relevance {kind}")
        staged_sidecar.write_text(text, encoding="utf-8")
    return path, sidecar


def export_heatmap(node, raw: np.ndarray | None, folder: Path, stem: str, displayed: bool) -> dict[str, Any]:
    """Write a heatmap node's raw map (``<stem>.nii.gz``, always) and, if ``displayed``, also its shown
    voxels (``<stem>-displayed.nii.gz``); returns the written files by kind."""
    from .mrml import volume_to_array
    from .mrml.display import VALUES_ATTRIBUTE
    from .provenance import read_attributes

    shown, grid = volume_to_array(node)
    holds = node.GetAttribute(VALUES_ATTRIBUTE) or "raw relevance"
    record = read_attributes(node)
    if raw is None:
        if not holds.startswith("raw"):
            raise InputError(f"'{node.GetName()}' shows a filtered map ({holds}) and its raw map is not "
                             "available here; remove the filter first, or run again.")
        raw = shown
    nii, sidecar = write_heatmap(folder / f"{stem}.nii.gz", raw, grid, record)
    files: dict[str, Any] = {"heatmap": nii, "heatmap_json": sidecar}
    if displayed:
        text = holds if holds.startswith("displayed") else "displayed: no filter (equal to the raw map)"
        nii, sidecar = write_heatmap(folder / f"{stem}-displayed.nii.gz", shown, grid, record, text)
        files.update(heatmap_displayed=nii, heatmap_displayed_json=sidecar)
    return files
