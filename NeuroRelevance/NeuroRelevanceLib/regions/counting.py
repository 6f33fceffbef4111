"""Per-region sums of one heatmap on an atlas grid: one gather and segment sums (no loop over regions)."""
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

    def pooled(self, group: np.ndarray, n_groups: int) -> RegionSums:
        """Totals summed within groups of regions (``group[i]`` = group of region i)."""
        def pool(values: np.ndarray) -> np.ndarray:
            return np.bincount(group, weights=values, minlength=n_groups)
        return RegionSums(pool(self.voxels).astype(np.int64), pool(self.sums), pool(self.sums_pos),
                          self.total_pos, self.voxel_volume, self.overlap, self.label)


def count_regions(heatmap: Heatmap, grid: LabelGrid) -> RegionSums:
    """Voxel counts, signed sums S_a and positive sums Σ_a R⁺ of ``heatmap`` in every atlas region.

    ``overlap`` is the share of the heatmap's relevance mass Σ|R| that lies inside the atlas'
    brain outline (its regions plus the unlabelled tissue they enclose, see ``LabelGrid.envelope``).
    """
    if heatmap.shape != grid.shape:
        raise ValueError(f"grid {grid.shape} does not match the heatmap {heatmap.shape}")
    flat, order = heatmap.flat()
    index, start, region = grid.inside(order)
    sums = np.zeros(grid.n_regions)
    sums_pos = np.zeros(grid.n_regions)
    if index.size:
        inside = flat[index].astype(np.float64)  # voxels of each region are one contiguous run
        sums[region] = np.add.reduceat(inside, start)
        np.maximum(inside, 0.0, out=inside)
        sums_pos[region] = np.add.reduceat(inside, start)
    mass_inside = float(np.abs(flat[grid.envelope(order)], dtype=np.float64).sum())
    return RegionSums(grid.counts[1:].astype(np.int64), sums, sums_pos, heatmap.total_pos, grid.voxel_volume,
                      min(mass_inside / heatmap.total_abs, 1.0), heatmap.label)


def nonzero_share(heatmap: Heatmap, grid: LabelGrid) -> float:
    """Share of the heatmap's nonzero voxels that lie inside some atlas region (for messages)."""
    flat, order = heatmap.flat()
    nonzero = int(np.count_nonzero(flat != 0))
    return int(np.count_nonzero(flat[grid.inside(order)[0]] != 0)) / max(nonzero, 1)
