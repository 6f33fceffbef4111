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
Grad-CAM++) are scored (``pretrained.evidence.score_card``) with ``metrics.groundtruth`` inside the brain:
mass accuracy, mass within
1 voxel, rank accuracy, AUC in the brain, pointing within 1 voxel, region precision@k after pooling
over the subject's atlas regions (T1 models), each beside the oracle (the true change blurred by
sigma 0, 1, 2 voxels) and chance; then the same as fractions of the sigma-1 ceiling, and each LRP
preset's conservation error and the preset the evidence supports (``pretrained.evidence.recommend``).
Prints Markdown tables and writes ``benchmark-output/groundtruth.json``.

    .venv/bin/python benchmarks/bench_groundtruth.py
    .venv/bin/python benchmarks/bench_groundtruth.py --write-evidence      # and record it in the cards
    .venv/bin/python benchmarks/bench_groundtruth.py --models ad_cnn --max-subjects 5 --models-dir /tmp/m
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("ad_cnn", "brain_age_resnet", "lesion_unet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="cards folder (default: the shipped models)")
    parser.add_argument("--models", nargs="+", choices=tuple(SETUP), default=list(SETUP))
    parser.add_argument("--max-subjects", type=int, default=100, help="at most this many subjects per model")
    parser.add_argument("--min-age", type=float, default=50.0, help="brain-age model: subjects this old or older")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmark-output" / "groundtruth.json")
    parser.add_argument("--write-evidence", action="store_true",
                        help="record the scores, the evidence-based preset and its reason in each card")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from NeuroRelevanceLib.metrics.groundtruth_report import markdown_table
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.evidence import recommend, score_card, write_evidence

    summary = {}
    for name in args.models:
        card = (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)
        if not card.is_file():
            print(f"skipping {name}: no card at {card}")
            continue
        t0 = time.perf_counter()
        report, extra = score_card(name, card, max_subjects=args.max_subjects, min_age=args.min_age)
        n = report.per_subject.subject.nunique()
        print(f"\n### {name}: {n} held-out subjects, mean ± sd, scored inside the brain\n")
        print(report.markdown())
        print("\nAs a fraction of the oracle at σ = 1 voxel:\n")
        print(markdown_table(report.fraction_of_ceiling(1.0)))
        print("\n| method | outside the brain (share of R+) | conservation error (median) | seconds |"
              "\n|---|---|---|---|")
        for m, e in extra.items():
            cons = f"{e['conservation_error']:.2g}" if "conservation_error" in e else "–"
            print(f"| {m} | {report.table.loc[m, 'outside_share']:.3f} | {cons} | {e['seconds']:.1f} |")
        print(f"\nEvidence-based recommendation: {recommend(report.table, extra)[1]}")
        if args.write_evidence:
            write_evidence(card, name, report, extra)
            print(f"recorded in {card}")
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
