"""Ground-truth inputs of ``neurorelevance compare`` read from files and put on the model grid.

- masks: a label map per subject, the chosen label values (default: every non-zero label) become
  the mask (nearest neighbour, physical space);
- change maps: per subject an effect-free twin (same channels as the subject); the change is
  ``sum_c |subject_c - twin_c| / scale_c`` resampled linearly onto the model grid, with ``scale_c``
  the 99th minus the 1st percentile of the subject's non-zero voxels in channel ``c`` (so channels
  in different units add up fairly; one channel: only the scale changes, which no score sees);
- atlases: a bundled atlas name or a label-map file, resampled onto the model grid (nearest
  neighbour, physical space), for region precision.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError


def _check_count(paths: Sequence[str], n: int, option: str) -> None:
    if len(paths) != n:
        raise InputError(f"{option}: {len(paths)} file(s) for {n} subject(s); give one per subject, in "
                         f"the same order.")


def label_masks(paths: Sequence[str] | None, model_inputs: list, labels: Sequence[int] | None,
                option: str = "--ground-truth", subjects: Sequence[str] | None = None) -> list | None:
    """Boolean masks on each model grid: voxels whose label is in ``labels`` (None: any non-zero).
    An empty mask, a label that no voxel has, or a mask lying outside the scan is refused."""
    from ..nifti import read_nifti
    from ..preprocessing import resample

    if paths is None:
        return None
    _check_count(paths, len(model_inputs), option)
    out = []
    for i, (path, mi) in enumerate(zip(paths, model_inputs, strict=True)):
        array, grid = read_nifti(path)
        values = np.rint(array).astype(np.int64)
        if not (values > 0).any():
            raise InputError(f"{option} {path} is empty (no voxel above 0); give the mask of this subject.")
        chosen = values > 0 if labels is None else np.isin(values, list(labels))
        if labels is not None and not chosen.any():
            present = sorted(int(v) for v in np.unique(values) if v)[:8]
            raise InputError(f"{option} {path}: no voxel has label {list(labels)} (labels present: "
                             f"{present}); pick labels with --ground-truth-labels.")
        mask = resample(chosen.astype("float32"), grid, mi.grid, order="nearest") > 0.5
        if not mask.any():
            subject = subjects[i] if subjects is not None else f"number {i + 1}"
            raise InputError(f"{option} {path} does not overlap the scan {subject}: none of its "
                             f"{int(chosen.sum())} voxels falls inside the region the model sees. Check that the "
                             "mask is in the scan's space (saved with the scan's affine).")
        out.append(mask)
    return out


def change_maps(twins: Sequence[str] | None, subjects: Sequence[str], model_inputs: list) -> list | None:
    """The true change map of each subject against its effect-free twin, on the model grid."""
    from ..nifti import read_nifti
    from ..preprocessing import resample

    if twins is None:
        return None
    _check_count(twins, len(subjects), "--twins")
    out = []
    for twin, subject, mi in zip(twins, subjects, model_inputs, strict=True):
        a_paths, b_paths = subject.split(","), twin.split(",")
        if len(a_paths) != len(b_paths):
            raise InputError(f"--twins {twin}: {len(b_paths)} channel(s) for a subject with {len(a_paths)}; "
                             f"give the twin's channels in the same order.")
        total = np.zeros(mi.array.shape[1:], np.float64)
        for a_path, b_path in zip(a_paths, b_paths, strict=True):
            a, grid_a = read_nifti(a_path.strip(), dtype="float32")
            b, grid_b = read_nifti(b_path.strip(), dtype="float32")
            if a.shape != b.shape or not grid_a.same_as(grid_b, atol=1e-3):
                raise InputError(f"--twins {b_path.strip()} is not on the grid of {a_path.strip()}; a twin "
                                 f"must be the same scan without the effect.")
            nonzero = a[a != 0]
            lo, hi = np.percentile(nonzero, (1, 99)) if nonzero.size else (0.0, 1.0)
            scale = float(hi - lo) or 1.0
            total += np.abs(resample(a - b, grid_a, mi.grid)) / scale
        if not total.any():
            raise InputError(f"--twins {twin} equals its subject on the model grid: no change to score "
                             f"against (a control subject, or the wrong twin).")
        out.append(total)
    return out


def atlas_maps(atlas: str | None, model_inputs: list) -> list | None:
    """The atlas as an integer label map (KJI) on each model grid, for region precision."""
    if atlas is None:
        return None
    from ..regions.statistics import resolve_atlas

    resolved = resolve_atlas(atlas)
    return [np.asarray(resolved.on_grid(mi.grid).dense_kji, dtype=np.int32)
            for mi in model_inputs]
