#!/usr/bin/env python
"""Ground-truth benchmark: do the demo models' heatmaps find the effect that was put there?

For each demo model, its subjects are regenerated from its card with their ground truth on the model
grid (``pretrained.heldout.held_out_subjects(split=..., truth=...)``); the mask is the card's
``ground_truth.mask_labels``:

- ``ad_cnn``: AD-like subjects, the AD logit explained, mask = AD-like label 1, twin = the same
  subject as a control (the true change is the AD-like effect only);
- ``brain_age_resnet``: control subjects aged >= --min-age, the predicted age explained, mask =
  labels 2 and 3 (age-related grey matter and ventricles), twin = the subject without any effect;
- ``lesion_unet``: every subject, the lesion logits summed over the predicted lesion explained, mask =
  lesion labels 1 and 2 (core and penumbra), twin = the subject without lesions.

The protocol (``pretrained.evidence``): first the DEVELOPMENT subjects (validation and former test split
of the training cohort) are scored for every LRP preset and the preset is chosen on them
(``pretrained.evidence.choose``); only then is the card's fresh held-out cohort
(``training.held_out_cohort``, another generator seed) scored, once, for every LRP preset and the gradient
family (gradient, gradient x input, guided backprop, Grad-CAM, Grad-CAM++) with ``metrics.groundtruth``
inside the brain: mass accuracy, mass within 1 voxel, rank accuracy, AUC in the brain, pointing within
1 voxel, region precision@k after pooling over the subject's atlas regions (T1 models), each beside the
oracle (the true change blurred by sigma 0, 1, 2 voxels) and chance; then the same as fractions of the
sigma-1 ceiling, and each method's conservation error and weakest subject. A card that retired an earlier
fresh cohort (``training.held_out_cohort.retired``: choices have seen it) has the chosen preset scored there too,
after the choice, for disclosure (``evidence.retired_held_out``). Prints Markdown tables and
writes ``benchmark-output/groundtruth.json``. ``--split test`` (or val, ...) scores one split alone and
chooses nothing (e.g. for a card without a fresh cohort; ``--split retired``: the retired cohort).

    .venv/bin/python benchmarks/bench_groundtruth.py
    .venv/bin/python benchmarks/bench_groundtruth.py --write-evidence      # and record it in the cards
    .venv/bin/python benchmarks/bench_groundtruth.py --models brain_age_resnet --write-evidence --models-dir /tmp/m
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
    parser.add_argument("--models", "--card", nargs="+", choices=tuple(SETUP), default=list(SETUP),
                        help="which demo cards (e.g. --card brain_age_resnet)")
    parser.add_argument("--max-subjects", type=int, default=100, help="at most this many subjects per model")
    parser.add_argument("--min-age", type=float, default=50.0, help="brain-age model: subjects this old or older")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmark-output" / "groundtruth.json")
    parser.add_argument("--write-evidence", action="store_true",
                        help="record both score sets, the preset chosen on development and its reason in each card")
    parser.add_argument("--split", default=None, help="score only this split (test, val, ...); chooses nothing")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.split and args.write_evidence:
        parser.error("--write-evidence follows the protocol (development, then the fresh cohort): drop --split")
    torch.set_num_threads(args.threads)
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.evidence import choose, evidence_record, score_card, write_evidence
    from NeuroRelevanceLib.pretrained.heldout import card_json, cohort_source, ground_truth_labels

    summary = {}
    for name in args.models:
        card = (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)
        if not card.is_file():
            print(f"skipping {name}: no card at {card}")
            continue
        t0 = time.perf_counter()
        options = {"max_subjects": args.max_subjects, "min_age": args.min_age}
        try:   # an older card (no label list, no fresh cohort): one clear message before any work
            ground_truth_labels(card)
            cohort_source(card, args.split or "held_out")
        except ValueError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2
        if args.split:
            report, extra = score_card(name, card, split=args.split, **options)
            _print(f"{name}: split {args.split}", report, extra)
            summary[name] = {args.split: _summary(report, extra)}
            continue
        development = score_card(name, card, split="development", other_methods=False, **options)
        _print(f"{name}: development subjects (the choice is made here)", *development)
        preset, why = choose(development[0].table, development[1])
        print(f"\nChosen on the development subjects: {preset}; {why}\n", flush=True)
        held_out = score_card(name, card, split="held_out", **options)   # once, after the choice
        _print(f"{name}: fresh held-out cohort (scored once, after the choice)", *held_out)
        retired = None
        if card_json(card)["training"]["held_out_cohort"].get("retired"):   # disclosure, after the choice
            retired = score_card(name, card, split="retired", presets=(preset,), other_methods=False, **options)
            _print(f"{name}: retired cohort (seen by earlier choices; the chosen preset, for disclosure)", *retired)
        preset, reason, evidence = evidence_record(name, card, development, held_out, retired=retired)
        print(f"\nRecommendation: {reason}")
        if args.write_evidence:
            write_evidence(card, preset, reason, evidence)
            print(f"recorded in {card}")
        print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
        summary[name] = {"development": _summary(*development), "held_out": _summary(*held_out),
                         **({"retired_held_out": _summary(*retired)} if retired else {}),
                         "recommended_preset": preset, "reason": reason}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


def _print(title: str, report, extra: dict) -> None:
    from NeuroRelevanceLib.metrics.groundtruth_report import markdown_table

    n = report.per_subject.subject.nunique()
    print(f"\n### {title}: {n} subjects, mean ± sd, scored inside the brain\n")
    print(report.markdown())
    print("\nAs a fraction of the oracle at σ = 1 voxel:\n")
    print(markdown_table(report.fraction_of_ceiling(1.0)))
    chance = float(report.table.loc["chance", "mass_accuracy"])
    print("\n| method | mass accuracy | / chance | weakest subject | outside the brain (share of R+) "
          "| conservation error (median) | seconds |\n|---|---|---|---|---|---|---|")
    for m, e in extra.items():
        cons = f"{e['conservation_error']:.2g}" if "conservation_error" in e else "–"
        mass = report.table.loc[m, "mass_accuracy"]
        print(f"| {m} | {mass:.3f} | {mass / chance:.2f}× | {e['min_subject_fold']:.1f}× "
              f"| {report.table.loc[m, 'outside_share']:.3f} | {cons} | {e['seconds']:.1f} |", flush=True)


def _summary(report, extra: dict) -> dict:
    return {"n": int(report.per_subject.subject.nunique()), "table": json.loads(report.table.to_json(orient="index")),
            "sd": json.loads(report.sd.to_json(orient="index")), "methods": extra, "notes": report.notes}


if __name__ == "__main__":
    sys.exit(main())
