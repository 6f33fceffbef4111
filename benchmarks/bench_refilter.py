"""How long an overlay update takes after a run (filter / α range / threshold / opacity change).

The Slicer module re-applies these from the cached raw relevance without running the network.
Target (issue 6): < 100 ms for a 1 mm volume (182 × 218 × 182). Prints the median of 7 updates.

    .venv/bin/python benchmarks/bench_refilter.py
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import slicer

    from NeuroRelevanceLib import mrml
    from NeuroRelevanceLib.geometry import Grid
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.selftest import make_test_model

    scene = slicer.vtkMRMLScene()
    views = mrml.SliceViews(scene)
    grid = Grid.from_parts((182, 218, 182), (1.0, 1.0, 1.0), (-90.0, -126.0, -72.0))
    rng = np.random.default_rng(0)
    scan = rng.normal(100, 20, grid.shape_kji).astype(np.float32)
    volume = mrml.array_to_volume(scene, scan, grid, "T1 1mm")
    logic = RelevanceLogic(scene, views)
    card = make_test_model(Path(tempfile.mkdtemp()))
    started = time.perf_counter()
    run = logic.run([volume], str(card), preset="epsilon-plus")
    print(f"first run (LRP on a 16^3 model grid, maps back to 1 mm): {time.perf_counter() - started:.2f} s")
    cases = [("pass [0.2, 1]", dict(filter="pass", filter_range=(0.2, 1.0))),
             ("clamp [0, 0.5]", dict(filter="clamp", filter_range=(0.0, 0.5))),
             ("threshold 0.3, opacity 0.7", dict(filter=None, threshold=0.3, opacity=0.7)),
             ("positive only", dict(filter=None, positive_only=True))]
    print(f"{'update':32s} {'median ms':>10s} {'max ms':>8s}")
    for label, kwargs in cases:
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            logic.refilter(run, **kwargs)
            times.append(1000 * (time.perf_counter() - t0))
        print(f"{label:32s} {statistics.median(times):10.1f} {max(times):8.1f}")
    print(f"voxels per map: {np.prod(grid.shape_kji):,}")


if __name__ == "__main__":
    main()
