"""Issue 7's demo check: the cohort decomposition of the demo brain-age network on its own cohort.

Regenerates the brain-age model's cohort from its card (the training cohort: the network saw it,
as in the seed's setting, where the decomposition explains a trained network over its data),
collects the activations of its last convolutional stage, fits the constrained Tucker model and
the linear model to age, and prints

- the linear model's MAE beside the network's own MAE on the same splits (target: within 25 %);
- for every RoI, the share of its (upsampled, non-negative) spatial map that falls inside the
  regions where the generator put age effects, against those regions' share of the brain (what a
  map unrelated to age would give). Both come from the card: the cohort is regenerated with its
  generator options (``pretrained.heldout.generator_options``: for the shipped card the focal age
  pattern, prefrontal balls and the ventricle shell) and the age-effect regions are its
  ``ground_truth.mask_labels`` (any subject's), scored inside the generator's brain masks (every
  subject's), not inside the non-zero voxels of the scans (dark ventricle voxels are 0 there); and,
  per subject, the share in that subject's own age-effect voxels (mean over subjects) against their
  mean share of its brain: the focal pattern differs between subjects, so the union over 160 subjects is
  much larger than any one subject's mask.

    .venv/bin/python benchmarks/cohort_demo.py [--subjects 160] [--rank 4 4] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=160)
    parser.add_argument("--rank", type=int, nargs=2, default=None, help="skip the rank grid")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from NeuroRelevanceLib.cohort import decompose_cohort
    from NeuroRelevanceLib.cohort.roi import roi_maps, upsample
    from NeuroRelevanceLib.geometry import Grid
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.preprocessing import orientation_directions
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.heldout import generator_options, ground_truth_labels, held_out_subjects

    card_path = model_card_path("brain_age_resnet")
    loaded = load_model(card_path, device="cpu")
    labels, options = ground_truth_labels(card_path), generator_options(card_path)
    t0 = time.perf_counter()
    # split="train" names the training cohort (seed 0); ``indices`` are its first n subjects, all splits.
    # truth="ad" adds each subject's brain mask (and a twin's change map, unused here).
    subjects = list(held_out_subjects(card_path, split="train", indices=list(range(args.subjects)), truth="ad"))
    print(f"regenerated {len(subjects)} subjects of the training cohort (seed {options['seed']}, age pattern "
          f"{options['params'].age_pattern!r}, age-effect labels {labels}) in {time.perf_counter() - t0:.0f} s")
    # The cohort pipeline feeds every volume as (D, H, W) = (k, j, i), the demo networks' input
    # order: pass the subjects' KJI arrays with the model grid they lie on.
    volumes = np.stack([s.x[0] for s in subjects])                         # (n, k, j, i)
    ages = np.array([s.age for s in subjects])
    age_mask = np.stack([np.isin(s.labels, labels) for s in subjects]).any(0)  # KJI, any subject
    brain = np.stack([s.brain for s in subjects]).all(0)                     # KJI, every subject
    spec = loaded.card.input
    model_grid = Grid.from_parts(spec.shape, spec.spacing, spec.origin, orientation_directions(spec.orientation))
    t0 = time.perf_counter()
    result = decompose_cohort(volumes, ages, loaded.model, volume_grid=model_grid, seed=0, batch_size=8,
                              rank=tuple(args.rank) if args.rank else None,
                              r1_values=range(2, 8), r2_values=range(2, 8),
                              progress=lambda message: print(f"  {message}", flush=True))
    print(f"decomposition pipeline: {time.perf_counter() - t0:.0f} s")
    summary = result.summary()
    lin, net = summary["linear_model_mae"], summary["network_mae"]
    print(f"\nrank {summary['rank']} (suggested {summary['suggested_rank']}), layer {summary['layer']}")
    print(f"{'split':6s} {'linear model MAE':>17s} {'network MAE':>12s} {'ratio':>6s}")
    for split in ("train", "val", "test"):
        if split in lin and split in net:
            print(f"{split:6s} {lin[split]:17.2f} {net[split]:12.2f} {lin[split] / net[split]:6.2f}")
    maps = upsample(roi_maps(result.linear.fit.factors[2], result.activations.layer_shape),
                    result.activations.input_shape)
    maps_kji = np.maximum(maps, 0)  # already in the (k, j, i) order of the arrays given
    nonzero = np.stack([s.x[0] > 0 for s in subjects]).all(0)  # the domain of earlier runs, for comparison
    chance, chance_nz = float(age_mask[brain].mean()), float(age_mask[nonzero].mean())
    print(f"\nRoI share inside the generator's age-effect regions (labels {labels}, any subject), scored "
          f"inside every subject's brain mask (chance = {chance:.2f}; in every scan's non-zero voxels, "
          f"as earlier runs: chance = {chance_nz:.2f}):")
    own = [(np.isin(s.labels, labels) & s.brain, s.brain) for s in subjects]   # each subject's own mask
    own_chance = float(np.mean([mask.sum() / b.sum() for mask, b in own]))
    for r, m in enumerate(maps_kji):
        inside = float(m[age_mask & brain].sum() / max(m[brain].sum(), 1e-12))
        inside_nz = float(m[age_mask & nonzero].sum() / max(m[nonzero].sum(), 1e-12))
        share = float(np.mean([m[mask].sum() / max(m[b].sum(), 1e-12) for mask, b in own]))
        print(f"  RoI {r + 1}: {inside:.2f}   (non-zero voxels: {inside_nz:.2f}; in each subject's own age-effect "
              f"voxels: {share:.3f} against chance {own_chance:.3f}, {share / own_chance:.2f}x)")


if __name__ == "__main__":
    main()
