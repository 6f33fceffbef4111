#!/usr/bin/env python
"""Does an input normalisation carry age everywhere in the brain? (the brain-age demo's diffuse-relevance lever)

Generates the brain-age model's cohort (seed 0, focal age pattern, compact atrophy, loss 0.8 at 90, skull-stripped,
4 mm; ``--seed`` for another) and, for each candidate normalisation of the card schema, prints the Pearson r
between age and the mean normalised intensity of the brain voxels outside every age or AD region (the
generator's ``regions`` map: voxels no age effect ever touches) over the development controls (subjects
104-159: validation and old test split), those aged >= 50, and the training controls (0-103); its
spread (sd) over all controls; the share of brain voxels and of the true mask (labels 2, 3; controls >= 50)
mapped to exactly 0 (the background's value: zB gives such a voxel no relevance); and the zB box
(``preprocessing.box_bounds``) inside the brain.

    .venv/bin/python benchmarks/bench_age_normalisation.py
"""
from __future__ import annotations

import argparse

import numpy as np

CANDIDATES = {
    "percentile 1/99 (shipped)": {"type": "percentile", "low": 1.0, "high": 99.0},
    "percentile 10/99": {"type": "percentile", "low": 10.0, "high": 99.0},
    "percentile 20/99": {"type": "percentile", "low": 20.0, "high": 99.0},
    "percentile 30/99": {"type": "percentile", "low": 30.0, "high": 99.0},
    "zscore": {"type": "zscore"},
    "minmax": {"type": "minmax"},
    "scale 99": {"type": "scale", "high": 99.0},
    "scale 99, floor 0.25": {"type": "scale", "high": 99.0, "floor": 0.25},
    "scale 99, floor 0.4": {"type": "scale", "high": 99.0, "floor": 0.4},
    "none (raw)": {"type": "none"},
}


def main(argv: list[str] | None = None) -> int:
    from NeuroRelevanceLib.demo import generate_cohort_arrays
    from NeuroRelevanceLib.demo.atrophy import AtrophyParams
    from NeuroRelevanceLib.preprocessing import box_bounds, normalize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="cohort seed")
    args = parser.parse_args(argv)
    cohort = generate_cohort_arrays(160, spacing=4.0, seed=args.seed, skull_strip=True,
                                    params=AtrophyParams(pattern="compact", age_pattern="focal", age_loss_at_90=0.8))
    age, control = np.asarray(cohort.table["age"]), np.asarray(cohort.table["diagnosis"]) == "control"
    dev = [i for i in range(104, 160) if control[i]]
    old = [i for i in dev if age[i] >= 50]
    train = [i for i in range(104) if control[i]]
    print(f"controls: {len(dev)} development ({len(old)} aged >= 50), {len(train)} training")
    print(f"{'normalisation':26s} {'r dev':>6s} {'r >=50':>6s} {'r train':>7s} {'sd':>7s} "
          f"{'brain->0':>8s} {'mask->0':>7s}  zB box in the brain")
    for name, spec in CANDIDATES.items():
        spec = dict(spec, mask="nonzero")
        means, zero_brain, zero_mask, lows, highs = np.zeros(160), [], [], [], []
        for i in dev + train:
            raw = cohort.images[i]
            x, brain = normalize(raw, spec), raw != 0
            means[i] = x[brain & (cohort.regions[i] == 0)].mean()
            if i in old:
                zero_brain.append((x[brain] == 0).mean())
                zero_mask.append((x[brain & np.isin(cohort.atrophy[i], (2, 3))] == 0).mean())
                lo, hi = box_bounds(x[None, None], spec, support=brain[None, None])
                lows.append(float(lo[0, 0][x != 0].min()))
                highs.append(float(hi[0, 0][x != 0].max()))

        def r(idx: list[int], means: np.ndarray = means) -> float:
            return float(np.corrcoef(age[idx], means[idx])[0, 1])

        print(f"{name:26s} {r(dev):+6.2f} {r(old):+6.2f} {r(train):+7.2f} {means[dev + train].std():7.4f} "
              f"{np.mean(zero_brain):8.3f} {np.mean(zero_mask):7.3f}  [{min(lows):+.2f}, {max(highs):.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
