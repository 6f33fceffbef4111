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

The fresh cohort is scored ONCE (``pretrained.held_out_log``): by ``--write-evidence``, which logs the scoring in
``training.held_out_cohort.scored`` before scoring and records the figures. A default run (no
``--write-evidence``) scores the development subjects and the retired cohort and says that it skipped the fresh
one; a cohort the log names is refused, alone (``--split held_out``) or with ``--write-evidence``, unless
``--rescore-held-out "<why>"`` is given: then it is scored (and logged) again, retired with that why, and the card
needs a new fresh seed (the run says which is free). ``--rewrite-reasons`` rewrites the cards' reasons from their
recorded evidence (new wording, no scoring).

    .venv/bin/python benchmarks/bench_groundtruth.py
    .venv/bin/python benchmarks/bench_groundtruth.py --write-evidence      # and record it in the cards
    .venv/bin/python benchmarks/bench_groundtruth.py --models brain_age_resnet --write-evidence --models-dir /tmp/m
    .venv/bin/python benchmarks/bench_groundtruth.py --card ad_cnn --rescore-held-out "why"   # retires the cohort
"""
from __future__ import annotations

import argparse
import json
import shlex
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
    parser.add_argument("--rescore-held-out", metavar="WHY", default=None,
                        help="score a fresh held-out cohort that was scored already; it is then retired with WHY")
    parser.add_argument("--rewrite-reasons", action="store_true",
                        help="rewrite each card's reason from its recorded evidence (no scoring)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.split and args.write_evidence:
        parser.error("--write-evidence follows the protocol (development, then the fresh cohort): drop --split")
    if args.rescore_held_out is not None and (args.write_evidence or args.split not in (None, "held_out")):
        parser.error("--rescore-held-out scores the fresh cohort again and retires it, so its figures cannot be the "
                     "card's evidence (drop --write-evidence) and it applies to no other split")
    if args.rescore_held_out is not None and not args.rescore_held_out.strip():
        parser.error('--rescore-held-out needs a why: --rescore-held-out "<why>"')
    torch.set_num_threads(args.threads)
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.evidence import rewrite_reason

    summary = {}
    for name in args.models:
        card = (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)
        if not card.is_file():
            print(f"skipping {name}: no card at {card}")
            continue
        if args.rewrite_reasons:
            print(f"{name}: {rewrite_reason(name, card)}")
            continue
        try:
            summary[name] = _card(name, card, args, shlex.join(sys.argv[1:] if argv is None else argv))
        except ValueError as error:   # an older card, or a fresh cohort scored already: before any work
            print(f"{name}: {error}", file=sys.stderr)
            return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


def _card(name: str, card: Path, args: argparse.Namespace, command: str) -> dict:
    """Score one card as the arguments say (module docstring); its summary. ValueError before any scoring."""
    from NeuroRelevanceLib.pretrained import evidence as ev
    from NeuroRelevanceLib.pretrained import held_out_log as log
    from NeuroRelevanceLib.pretrained.heldout import card_json, cohort_source, ground_truth_labels

    rescore = args.rescore_held_out
    fresh = args.split == "held_out" or (args.split is None and (args.write_evidence or rescore is not None))
    ground_truth_labels(card)
    cohort_source(card, args.split or ("held_out" if fresh else "development"))
    if fresh and rescore is None:
        log.refuse_rescoring(card)
        if args.split == "held_out":
            raise ValueError("the fresh held-out cohort is scored once, after the choice, by --write-evidence (which "
                             "records its figures); --split held_out alone would spend it. To score it anyway, give "
                             '--rescore-held-out "<why>": it is then retired')
    t0 = time.perf_counter()
    options = {"max_subjects": args.max_subjects, "min_age": args.min_age}
    script = f"benchmarks/bench_groundtruth.py {command}".strip()

    def score_fresh() -> tuple:
        seed = cohort_source(card, "held_out")["seed"]
        earlier = len(log.scorings(card))
        log.log_scoring(card, methods=ev.methods_scored(), script=script, commit=log.checkout_commit(ROOT),
                    why=rescore or "the protocol's one scoring, after the choice on the development subjects")
        print(f"\nlogged in {card}: fresh held-out cohort seed {seed} scored "
              f"({'scoring ' + str(earlier + 1) if earlier else 'its one scoring'})", flush=True)
        return ev.score_card(name, card, split="held_out", **options)

    def retire() -> None:
        seed = log.retire_fresh(card, f"{rescore} (scored again after its one scoring, bench_groundtruth.py "
                                  f"--rescore-held-out)")
        print(f"\nretired the fresh cohort seed {seed} in {card} (training.held_out_cohort.retired). Pick a new "
              f"seed: set training.held_out_cohort.seed to one no run has used (e.g. {log.next_seed(card)}), then run "
              f"--write-evidence to score it once.", flush=True)

    if args.split:
        report, extra = score_fresh() if args.split == "held_out" else ev.score_card(name, card, split=args.split,
                                                                                  **options)
        _print(f"{name}: split {args.split}", report, extra)
        if rescore is not None:
            retire()
        return {args.split: _summary(report, extra)}
    development = ev.score_card(name, card, split="development", other_methods=False, **options)
    _print(f"{name}: development subjects (the choice is made here)", *development)
    preset, why = ev.choose(development[0].table, development[1])
    print(f"\nChosen on the development subjects: {preset}; {why}\n", flush=True)
    held_out = None
    if fresh:
        held_out = score_fresh()   # once, after the choice
        _print(f"{name}: fresh held-out cohort ("
               + ("scored once, after the choice)" if rescore is None else "scored AGAIN: it is retired after this)"),
               *held_out)
    else:
        done = log.scorings(card) if card_json(card)["training"].get("held_out_cohort") else []
        print("skipped the fresh held-out cohort: it is scored once, by --write-evidence; " + (
            f"scored on {done[0].get('date')} (commit {done[0].get('commit')}), its figures are the card's "
            f'evidence.held_out (--rescore-held-out "<why>" scores it again and retires it)' if done else
            "not scored yet"), flush=True)
    retired = None
    if card_json(card)["training"].get("held_out_cohort", {}).get("retired"):   # disclosure, after the choice
        retired = ev.score_card(name, card, split="retired", presets=(preset,), other_methods=False, **options)
        _print(f"{name}: retired cohort (seen by earlier choices; the chosen preset, for disclosure)", *retired)
    summary = {"development": _summary(*development), "chosen_on_development": preset,
               **({"retired_held_out": _summary(*retired)} if retired else {})}
    if held_out is not None and rescore is None:
        preset, reason, evidence = ev.evidence_record(name, card, development, held_out, retired=retired)
        print(f"\nRecommendation: {reason}")
        if args.write_evidence:
            ev.write_evidence(card, preset, reason, evidence)
            print(f"recorded in {card}")
        summary.update({"held_out": _summary(*held_out), "recommended_preset": preset, "reason": reason})
    elif held_out is not None:
        summary["held_out_rescored"] = _summary(*held_out)
        retire()
    print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
    return summary


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
