"""Per-region sums of one heatmap on an atlas grid, with np.bincount (no loop over regions)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heatmaps import Heatmap
from .resample import LabelGrid


@dataclass(eq=False)
class RegionSums:
    """Raw per-region totals of one heatmap (arrays aligned with the atlas' regions)."""

    voxels: np.ndarray
    sums: np.ndarray
    sums_pos: np.ndarray
    total_pos: float
    voxel_volume: float
    overlap: float
    label: str

    def pooled(self, group: np.ndarray, n_groups: int) -> "RegionSums":
        """Totals summed within groups of regions (``group[i]`` = group of region i)."""
        def pool(values: np.ndarray) -> np.ndarray:
            return np.bincount(group, weights=values, minlength=n_groups)
        return RegionSums(pool(self.voxels).astype(np.int64), pool(self.sums), pool(self.sums_pos),
                          self.total_pos, self.voxel_volume, self.overlap, self.label)


def count_regions(heatmap: Heatmap, grid: LabelGrid) -> RegionSums:
    """Voxel counts, signed sums S_a and positive sums Σ_a R⁺ of ``heatmap`` in every atlas region.

    ``overlap`` is the fraction of the heatmap's nonzero voxels that lie inside some atlas region.
    """
    values = heatmap.values
    if values.shape != grid.shape:
        raise ValueError(f"grid {grid.shape} does not match the heatmap {values.shape}")
    order = "F" if values.flags.f_contiguous and not values.flags.c_contiguous else "C"
    flat = values.ravel(order=order)
    index, region = grid.inside(order)
    inside = flat[index]
    length = grid.n_regions + 1
    sums = np.bincount(region, weights=inside, minlength=length)[1:]
    sums_pos = np.bincount(region, weights=np.maximum(inside, 0), minlength=length)[1:]
    support_inside = int(np.count_nonzero(inside))
    return RegionSums(grid.counts[1:].astype(np.int64), sums, sums_pos, heatmap.total_pos,
                      grid.voxel_volume, support_inside / max(heatmap.support, 1), heatmap.label)
