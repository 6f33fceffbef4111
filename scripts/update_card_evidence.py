#!/usr/bin/env python
"""Score the demo models on their held-out subjects and record the evidence in their cards.

For each card: every LRP preset and the gradient family scored against the ground truth
(``pretrained.evidence.score_card``), the preset the evidence supports (``recommend``: among presets
that put >= 5x chance of their positive relevance in the true mask, the one that conserves best), its
reason in words, and the scores, written into the card's JSON (``recommended_preset``,
``recommendation_reason``, ``evidence``).

    .venv/bin/python scripts/update_card_evidence.py                       # the shipped cards
    .venv/bin/python scripts/update_card_evidence.py --models ad_cnn --models-dir /tmp/models
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.evidence import SETUP, score_card, write_evidence

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tuple(SETUP), default=list(SETUP))
    parser.add_argument("--models-dir", type=Path, default=None, help="cards folder (default: the shipped cards)")
    parser.add_argument("--max-subjects", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models:
        card = (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)
        report, extra = score_card(name, card, max_subjects=args.max_subjects)
        preset, reason = write_evidence(card, name, report, extra)
        print(f"{name}: recommends {preset}\n  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
