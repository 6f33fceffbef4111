#!/usr/bin/env python
"""Ground-truth benchmark: do the demo models' heatmaps find the effect that was put there?

For each demo model, its held-out test subjects are regenerated from its card with their ground
truth on the model grid (``pretrained.heldout.held_out_subjects(truth=...)``):

- ``ad_cnn``: AD-like test subjects, the AD logit explained, mask = AD-like label 1, twin = the same
  subject as a control (the true change is the AD-like effect only);
- ``brain_age_resnet``: control test subjects aged >= --min-age, the predicted age explained, mask =
  labels 2 and 3 (age-related grey matter and ventricles), twin = the subject without any effect;
- ``lesion_unet``: test subjects, the lesion logits summed over the predicted lesion explained, mask =
  lesion (core and penumbra), twin = the subject without lesions.

Every LRP preset and the gradient family (gradient, gradient x input, guided backprop, Grad-CAM,
Grad-CAM++) are scored with ``metrics.groundtruth`` inside the brain: mass accuracy, mass within
1 voxel, rank accuracy, AUC in the brain, pointing within 1 voxel, region precision@k after pooling
over the subject's atlas regions (T1 models), each beside the oracle (the true change blurred by
sigma 0, 1, 2 voxels) and chance; then the same as fractions of the sigma-1 ceiling, and each LRP
preset's conservation error. Prints Markdown tables and writes ``benchmark-output/groundtruth.json``.

    .venv/bin/python benchmarks/bench_groundtruth.py
    .venv/bin/python benchmarks/bench_groundtruth.py --models ad_cnn --max-subjects 5 --models-dir /tmp/m
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
OTHER_METHODS = ("gradient", "gradient_x_input", "guided_backprop", "gradcam", "gradcam++")
SETUP = {  # model -> (held-out selection, truth twin, mask labels)
    "ad_cnn": ({"diagnosis": "AD"}, "ad", (1,)),
    "brain_age_resnet": ({"diagnosis": "control"}, "all", (2, 3)),
    "lesion_unet": ({}, "all", (1, 2)),
}


def target_of(name: str, model, card, subject) -> object:
    """What is explained: the AD logit, the age output, or the lesion logits summed over the lesion the
    model predicts (what a user has; the true lesion only if the prediction is empty)."""
    if name == "ad_cnn":
        return card.output.classes.index("AD")
    if name == "lesion_unet":
        with torch.no_grad():
            predicted = model(torch.from_numpy(subject.x[None])).argmax(1)[0] == 1
        return {"class": 1, "mask": predicted if predicted.any() else torch.from_numpy(subject.labels > 0)}
    return None


def maps_of(name: str, model, card, subject, methods: list[str]) -> tuple[dict, dict, dict]:
    """Spatial maps (channels summed) of every method, seconds, and LRP conservation errors."""
    from NeuroRelevanceLib.methods.dispatch import explain
    from NeuroRelevanceLib.pretrained.heldout import input_bounds

    x = torch.from_numpy(subject.x[None])
    bounds = input_bounds(card) or (None, None)
    target = target_of(name, model, card, subject)
    kwargs = {"target": target["class"], "mask": target["mask"]} if isinstance(target, dict) else {"target": target}
    maps, seconds, conservation = {}, {}, {}
    for method in methods:
        t0 = time.perf_counter()
        if method.startswith("lrp:"):
            e = explain(model, x, "lrp", preset=method[4:], low=bounds[0], high=bounds[1], device="cpu", **kwargs)
            conservation[method] = float(e.max_conservation_error)
        else:
            e = explain(model, x, method, device="cpu", **kwargs)
        seconds[method] = time.perf_counter() - t0
        maps[method] = e.relevance[0].sum(0).double().numpy()
    return maps, seconds, conservation


def score_model(name: str, card_path: Path, args: argparse.Namespace):
    """The ground-truth report of one model over its selected held-out subjects."""
    from NeuroRelevanceLib.engine import PRESETS
    from NeuroRelevanceLib.metrics.groundtruth_report import ground_truth_report
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    loaded = load_model(card_path, device="cpu")
    select, twin, labels = SETUP[name]
    min_age = args.min_age if name == "brain_age_resnet" else None
    methods = [f"lrp:{p}" for p in PRESETS] + list(OTHER_METHODS)
    maps = {m: [] for m in methods}
    masks, brains, changes, atlases, names = [], [], [], [], []
    seconds = {m: [] for m in methods}
    conservation = {m: [] for m in methods if m.startswith("lrp:")}
    for subject in held_out_subjects(card_path, truth=twin, min_age=min_age, **select):
        if len(masks) >= args.max_subjects:
            break
        mask = np.isin(subject.labels, labels)
        if not (mask & subject.brain).any():
            continue
        subject_maps, secs, cons = maps_of(name, loaded.model, loaded.card, subject, methods)
        for m in methods:
            maps[m].append(subject_maps[m])
            seconds[m].append(secs[m])
        for m, v in cons.items():
            conservation[m].append(v)
        masks.append(mask)
        brains.append(subject.brain)
        changes.append(subject.change)
        atlases.append(subject.atlas)
        names.append(subject.subject_id)
        print(f"  {name} {subject.subject_id}: mask {int(mask.sum())} voxels "
              f"({mask[subject.brain].mean():.3f} of the brain)", flush=True)
    report = ground_truth_report(maps, masks, brains=brains, changes=changes,
                                 atlases=None if atlases[0] is None else atlases, names=names)
    extra = {m: {"seconds": float(np.mean(seconds[m])),
                 **({"conservation_error": float(np.median(conservation[m]))} if m in conservation else {})}
             for m in methods}
    return report, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="cards folder (default: the shipped models)")
    parser.add_argument("--models", nargs="+", choices=tuple(SETUP), default=list(SETUP))
    parser.add_argument("--max-subjects", type=int, default=100, help="at most this many subjects per model")
    parser.add_argument("--min-age", type=float, default=50.0, help="brain-age model: subjects this old or older")
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
        report, extra = score_model(name, card, args)
        n = report.per_subject.subject.nunique()
        print(f"\n### {name}: {n} held-out subjects, mean ± sd, scored inside the brain\n")
        print(report.markdown())
        print("\nAs a fraction of the oracle at σ = 1 voxel:\n")
        from NeuroRelevanceLib.metrics.groundtruth_report import markdown_table

        print(markdown_table(report.fraction_of_ceiling(1.0)))
        print("\n| method | outside the brain (share of R+) | conservation error (median) | seconds |\n|---|---|---|---|")
        for m, e in extra.items():
            cons = f"{e['conservation_error']:.2g}" if "conservation_error" in e else "–"
            print(f"| {m} | {report.table.loc[m, 'outside_share']:.3f} | {cons} | {e['seconds']:.1f} |")
        print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
        summary[name] = {"n": int(n), "table": json.loads(report.table.to_json(orient="index")),
                         "sd": json.loads(report.sd.to_json(orient="index")), "methods": extra,
                         "notes": report.notes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
