"""RoI maps: spatial factors U3 on the layer grid, upsampled onto the input grid, saved as NIfTI.

Arrays are in the model's input order (D, H, W) = (k, j, i) and geometry is a ``geometry.Grid``.
Layer-grid geometry: a layer with shape (d, h, w) computed from an input of shape (D, H, W) has
per-axis scale s = D / d, …; layer voxel n covers input voxels [n·s, (n+1)·s) and its centre sits
at input index n·s + (s − 1)/2. Hence the layer grid's IJK→RAS matrix is ``input @ [[diag(s),
(s−1)/2], [0, 1]]`` (s in i, j, k order). Trilinear upsampling with ``align_corners=False`` uses the
same centre convention, so an upsampled RoI lies on the input grid.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..geometry import Grid


def layer_grid(input_grid: Grid, layer_shape: Sequence[int]) -> Grid:
    """The :class:`Grid` of a layer of shape ``layer_shape`` (k, j, i) computed from ``input_grid``
    (see the module docstring)."""
    s = (np.asarray(input_grid.shape_kji, float) / np.asarray(layer_shape[-3:], float))[::-1]
    m = np.eye(4)
    m[:3, :3] = np.diag(s)
    m[:3, 3] = (s - 1.0) / 2.0
    nk, nj, ni = (int(n) for n in layer_shape[-3:])
    return Grid((nk, nj, ni), input_grid.ijk_to_ras @ m)


def roi_maps(u3, layer_shape: Sequence[int]) -> np.ndarray:
    """Columns of U3 (v × R1) reshaped to (R1, *layer_shape) (C order, as activations are flattened)."""
    u3 = torch.as_tensor(u3).detach().cpu().double()
    if u3.shape[0] != int(np.prod(layer_shape)):
        raise InputError(f"U3 has {u3.shape[0]} rows but the layer grid {tuple(layer_shape)} has "
                         f"{int(np.prod(layer_shape))} voxels; pass the layer grid of the activations.")
    return u3.T.reshape((u3.shape[1], *layer_shape)).numpy()


def upsample(maps: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Trilinear upsampling (align_corners=False) of (R, *layer_shape) maps onto ``input_shape``."""
    t = torch.as_tensor(maps, dtype=torch.float64)[None]
    out = F.interpolate(t, size=tuple(int(s) for s in input_shape[-3:]), mode="trilinear",
                        align_corners=False)
    return out[0].numpy()


def strongest_roi(maps: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Label map (int16): 1 + index of the RoI with the largest max-normalised value at each voxel,
    0 where every normalised RoI value is below ``threshold`` (seed figures 3 and 6)."""
    peak = maps.reshape(maps.shape[0], -1).max(axis=1)
    norm = maps / np.where(peak > 0, peak, 1.0)[:, None, None, None]
    labels = (np.argmax(norm, axis=0) + 1).astype(np.int16)
    labels[norm.max(axis=0) < threshold] = 0
    return labels


def save_rois(out_dir: str | Path, u3, layer_shape: Sequence[int], input_grid: Grid,
              threshold: float = 0.1) -> dict[str, list[Path] | Path]:
    """Write roi_XX.nii.gz (input grid, float32), rois_layer_grid.nii.gz (4-D, layer grid) and
    roi_labels.nii.gz (strongest RoI). ``layer_shape`` is (k, j, i). Returns the paths."""
    from ..nifti import write_nifti, write_nifti_series

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    coarse = roi_maps(u3, layer_shape)
    fine = upsample(coarse, input_grid.shape_kji)
    paths = [write_nifti(out / f"roi_{i + 1:02d}.nii.gz", m.astype(np.float32), input_grid)
             for i, m in enumerate(fine)]
    layer_path = write_nifti_series(out / "rois_layer_grid.nii.gz", coarse.astype(np.float32),
                                    layer_grid(input_grid, layer_shape))
    label_path = write_nifti(out / "roi_labels.nii.gz", strongest_roi(fine, threshold), input_grid)
    return {"rois": paths, "layer_grid": layer_path, "labels": label_path}


def region_summaries(roi_paths: Sequence[Path], atlas: str, top: int = 5):
    """Per-RoI atlas table via ``NeuroRelevanceLib.regions.region_statistics`` (optional).

    Returns a pandas DataFrame (roi, rank, name, sum, density, fraction_pos) or None with a reason
    when the regions package or the atlas is unavailable.
    """
    try:
        from ..regions import region_statistics
    except ImportError as exc:  # regions is optional for the cohort pipeline
        return None, f"region statistics unavailable ({exc})"
    import pandas as pd

    rows = []
    for i, path in enumerate(roi_paths):
        try:
            table = region_statistics(str(path), atlas, min_overlap=0.0)
        except Exception as exc:  # noqa: BLE001 - report, do not fail the whole pipeline
            return None, f"region statistics failed for {Path(path).name}: {exc}"
        t = table.sort_values("rank").head(top)
        for _, r in t.iterrows():
            rows.append({"roi": i + 1, "rank": int(r["rank"]), "name": r.get("name", ""),
                         "sum": float(r["sum"]), "density": float(r["density"]),
                         "fraction_pos": float(r.get("fraction_pos", np.nan))})
    return pd.DataFrame(rows), ""
