#!/usr/bin/env python
"""Ground-truth benchmark: do the heatmaps of the demo models find the atrophy that was put there?

For the held-out test subjects of ``ad_cnn`` (AD-like subjects, explaining the AD logit; mask:
AD-like grey-matter loss) and ``brain_age_resnet`` (subjects aged >= --min-age, explaining the
predicted age; mask: age-related grey-matter loss and ventricle growth), it computes

- relevance mass accuracy  sum_M R+ / sum R+
- rank accuracy            share of the |M| top-relevance voxels inside M

for every LRP preset of the engine and for two gradient baselines computed here with autograd:
``gradient`` (|dy/dx|, the saliency map) and ``gradient x input`` (signed). ``mask share`` is the
score a random ranking gets. The same two scores with the mask grown by ``--tolerance`` voxels
(default 1 voxel = 4 mm) are listed beside them, because conv-net evidence spreads by about a
voxel around thin cortical regions at this resolution. Prints one table per model (mean ± sd
over subjects) and writes
``benchmark-output/groundtruth.json``.

    .venv/bin/python benchmarks/bench_groundtruth.py
    .venv/bin/python benchmarks/bench_groundtruth.py --models-dir /tmp/models --max-subjects 5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def gradient_maps(model: torch.nn.Module, x: torch.Tensor,
                  target: int | None) -> tuple[np.ndarray, np.ndarray]:
    """|gradient| and gradient × input of the explained output (class ``target``, or the
    regression output when ``target`` is None), summed over input channels."""
    xg = x.clone().requires_grad_(True)
    out = model(xg)
    y = out[:, target].sum() if target is not None else out.reshape(-1).sum()
    (grad,) = torch.autograd.grad(y, xg)
    return grad.abs().sum(1).numpy(), (grad * x).sum(1).detach().numpy()


def score_model(name: str, card_path: Path, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Per-method lists of mass and rank accuracy over the selected held-out subjects."""
    from NeuroRelevanceLib.demo import ground_truth_scores
    from NeuroRelevanceLib.engine import PRESETS, explain
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects, input_bounds

    loaded = load_model(card_path, device="cpu")
    model, card = loaded.model, loaded.card
    if name == "ad_cnn":
        subjects = held_out_subjects(card_path, diagnosis="AD")
        target, labels = card.output.classes.index("AD"), (1,)
    else:
        subjects = held_out_subjects(card_path, min_age=args.min_age)
        target, labels = None, (2, 3)
    bounds = input_bounds(card) or (None, None)
    results: dict[str, dict[str, list[float]]] = {}
    used = 0
    for subject in subjects:
        if used >= args.max_subjects:
            break
        mask = np.isin(subject.labels, labels)
        if not mask.any():
            continue
        used += 1
        x = torch.from_numpy(subject.x[None])
        maps = {}
        for preset in PRESETS:
            e = explain(model, x, preset=preset, target=target, low=bounds[0], high=bounds[1], device="cpu")
            maps[preset] = e.relevance[0].sum(0).numpy()
        maps["gradient"], maps["gradient x input"] = (m[0] for m in gradient_maps(model, x, target))
        for method, heatmap in maps.items():
            entry = results.setdefault(method, {"mass": [], "rank": [], "share": [], "mass_tol": [],
                                                "rank_tol": [], "share_tol": []})
            for suffix, tol in (("", 0), ("_tol", args.tolerance)):
                try:
                    s = ground_truth_scores(heatmap, mask, tolerance=tol)
                except ValueError:  # e.g. no positive relevance at all: counts as 0
                    s = {"mass_accuracy": 0.0, "rank_accuracy": 0.0, "mask_fraction": float(mask.mean())}
                entry["mass" + suffix].append(s["mass_accuracy"])
                entry["rank" + suffix].append(s["rank_accuracy"])
                entry["share" + suffix].append(s["mask_fraction"])
        print(f"  {name} {subject.subject_id} (age {subject.age:.0f}, {subject.diagnosis}): "
              f"mask {int(mask.sum())} voxels", flush=True)
    return results


def table(name: str, results: dict[str, dict[str, list[float]]], tolerance: int) -> str:
    """Markdown table: method, mass and rank accuracy (mean ± sd), the same with tolerance, subjects."""
    lines = [f"### {name}", "", f"| method | mass accuracy | rank accuracy | mass (±{tolerance} vox) | "
             f"rank (±{tolerance} vox) | n |", "|---|---|---|---|---|---|"]

    def cell(values: list[float]) -> str:
        v = np.array(values)
        return f"{v.mean():.3f} ± {v.std():.3f}"

    for method, r in results.items():
        lines.append(f"| {method} | {cell(r['mass'])} | {cell(r['rank'])} | {cell(r['mass_tol'])} | "
                     f"{cell(r['rank_tol'])} | {len(r['mass'])} |")
    if results:
        first = next(iter(results.values()))
        share, share_tol = np.mean(first["share"]), np.mean(first["share_tol"])
        lines.append(f"| (mask share = random ranking) | {share:.3f} | {share:.3f} | {share_tol:.3f} | "
                     f"{share_tol:.3f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="cards folder (default: the shipped models)")
    parser.add_argument("--max-subjects", type=int, default=100, help="at most this many subjects per model")
    parser.add_argument("--min-age", type=float, default=50.0, help="brain-age model: oldest subjects only")
    parser.add_argument("--models", nargs="+", choices=("ad_cnn", "brain_age_resnet"),
                        default=["ad_cnn", "brain_age_resnet"])
    parser.add_argument("--tolerance", type=int, default=1,
                        help="voxels the mask is grown by for the extra columns")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmark-output" / "groundtruth.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from NeuroRelevanceLib.pretrained import model_card_path

    summary = {}
    for name in args.models:
        card = (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)
        if not card.is_file():
            print(f"skipping {name}: no card at {card}")
            continue
        t0 = time.perf_counter()
        results = score_model(name, card, args)
        print(table(name, results, args.tolerance), f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
        summary[name] = {m: {k: float(np.mean(v)) for k, v in r.items()} | {"n": len(r["mass"])}
                         for m, r in results.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
