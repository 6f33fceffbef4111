#!/usr/bin/env python
"""How high can a heatmap score? The ceiling of each ground-truth score, ribbon against compact atrophy.

For AD-like subjects of the demo cohort at each spacing and atrophy pattern, it prints the AD-like
mask's share of the brain (= chance of mass and rank accuracy), the share of its voxels on the
mask's boundary (a face neighbour outside it) and the oracle's scores — the true change (subject
minus its AD-free twin) blurred by sigma = 0, 1, 2 voxels — inside the brain. No network involved:
this is what the best possible map scores, so a method's score can be read against it.

    .venv/bin/python benchmarks/bench_masks.py [--subjects 4] [--spacings 2 4]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import ndimage as ndi

SCORES = ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain")


def main(argv: list[str] | None = None) -> int:
    from NeuroRelevanceLib.demo.atrophy import AtrophyParams
    from NeuroRelevanceLib.demo.cohort import synthesize_subject
    from NeuroRelevanceLib.metrics.groundtruth import GroundTruth, oracle_maps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--spacings", type=float, nargs="+", default=[2.0, 3.0, 4.0])
    args = parser.parse_args(argv)
    print("| spacing | pattern | mask / brain | boundary share | oracle σ | " + " | ".join(SCORES) + " |")
    print("|---" * (5 + len(SCORES)) + "|")
    for spacing in args.spacings:
        for pattern in ("ribbon", "compact"):
            params = AtrophyParams(pattern=pattern)
            rows = {s: [] for s in (0.0, 1.0, 2.0)}
            share, boundary = [], []
            for i in range(args.subjects):
                kw = dict(spacing=spacing, seed=0, params=params, skull_strip=True)
                s = synthesize_subject(1000 + i, 75.0, "AD", **kw)
                twin = synthesize_subject(1000 + i, 75.0, "control", **kw)
                mask = s.atrophy == 1
                truth = GroundTruth(mask, brain=s.brain)
                share.append(truth.mask_share)
                boundary.append((mask & ~ndi.binary_erosion(mask)).sum() / mask.sum())
                for sigma, oracle in oracle_maps(s.image - twin.image).items():
                    rows[sigma].append([truth.score(oracle)[k] for k in SCORES])
            for sigma, values in rows.items():
                v = np.mean(values, axis=0)
                print(f"| {spacing:g} mm | {pattern} | {np.mean(share):.3f} | {np.mean(boundary):.2f} | {sigma:g} | "
                      + " | ".join(f"{x:.3f}" for x in v) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
