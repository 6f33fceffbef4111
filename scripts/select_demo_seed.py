#!/usr/bin/env python
"""Keep the best of several training runs of a demo model, judged on its VALIDATION subjects only.

Train the candidates with the same recipe and cohort and different training seeds, then select:

    for s in 0 1 2 3 4; do
      .venv/bin/python scripts/train_demo_models.py --out /tmp/cand/seed-$s --train-seed $s \\
          --models brain_age_resnet --pattern compact --skull-strip --age-pattern focal \\
          --age-loss 0.8 --t1-normalization scale --t1-invert --epochs 6 24 40 --threads 1
    done
    .venv/bin/python scripts/select_demo_seed.py /tmp/cand/seed-*          # into NeuroRelevanceLib/pretrained/
    .venv/bin/python benchmarks/bench_groundtruth.py --card brain_age_resnet --write-evidence   # then once

The AD model's candidates (training seeds, and the intensity jitter as a recipe option) are chosen on its
development subjects, where its preset is chosen too (folder names identify the candidates):

    .venv/bin/python scripts/select_demo_seed.py /tmp/adcnn/* --model ad_cnn --split development

Each candidate is scored with the evidence's metric and rule on the validation controls
(``pretrained.selection``); the kept run's card and weights are copied into ``--out`` with the
candidates, their validation scores and the rule in the card's ``training.selection``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "NeuroRelevance" / "NeuroRelevanceLib" / "pretrained"


def main(argv: list[str] | None = None) -> int:
    from NeuroRelevanceLib.pretrained.selection import select_candidate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", type=Path, help="folders written by train_demo_models.py")
    parser.add_argument("--model", default="brain_age_resnet", choices=("ad_cnn", "brain_age_resnet", "lesion_unet"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the kept card and weights go")
    parser.add_argument("--split", choices=("val", "development"), default="val",
                        help="subjects the candidates are scored on: validation, or development (validation and "
                             "former test split, where the AD model's preset is chosen)")
    parser.add_argument("--min-age", type=float, default=50.0, help="brain-age model: subjects this old or older")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    record = select_candidate(args.model, args.candidates, args.out, min_age=args.min_age, split=args.split)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
