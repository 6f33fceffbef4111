#!/usr/bin/env python
"""Where does a brain-age card read age? Restore regions of each subject to its effect-free twin.

For the validation controls aged >= 50 of a brain-age card (``--split test`` for its test split), the card's
network predicts the age of the subject, of the subject with its true mask (atrophy labels 2, 3) replaced by
the effect-free twin's input, with only the prefrontal balls (label 2) or only the ventricle shell (label 3)
replaced, and of the whole twin. If "mask restored" equals "whole twin", the network reads age from the mask
alone (nothing elsewhere in the brain carries it), and a diffuse relevance map is the explanation's doing.

    .venv/bin/python benchmarks/bench_age_occlusion.py [CARD ...]       # default: the bundled brain_age_resnet
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

CASES = ("subject", "mask restored", "balls only", "shell only", "whole twin")


def occlusion(card: str | Path, split: str = "val", min_age: float = 50.0) -> np.ndarray:
    """(subjects, 1 + len(CASES)) array: true age, then the prediction for each case."""
    from NeuroRelevanceLib.demo.cohort import cohort_table, synthesize_subject
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.preprocessing import prepare_input, resample
    from NeuroRelevanceLib.pretrained.heldout import card_json, generator_options, held_out_indices

    loaded = load_model(card, device="cpu")
    options = generator_options(card)
    table = cohort_table(int(card_json(card)["training"]["cohort"]["n_subjects"]), seed=options["seed"])
    rows = []
    for i in held_out_indices(card, split):
        row = table.iloc[i]
        if row["diagnosis"] != "control" or row["age"] < min_age:
            continue
        subject, twin = (synthesize_subject(i, float(row["age"]), "control", effects=e, **options)
                         for e in (True, False))
        x = prepare_input([(subject.image, subject.grid)], loaded.card)
        x_twin = prepare_input([(twin.image, twin.grid)], loaded.card).array
        labels = np.rint(resample(subject.atrophy.astype(np.float32), subject.grid, x.grid, "nearest"))
        masks = (labels < 0, np.isin(labels, (2, 3)), labels == 2, labels == 3, labels >= 0)
        with torch.no_grad():
            preds = [float(loaded.model(torch.from_numpy(np.where(m[None], x_twin, x.array)[None]))) for m in masks]
        rows.append([float(row["age"]), *preds])
    return np.array(rows)


def main(argv: list[str] | None = None) -> int:
    from NeuroRelevanceLib.pretrained import model_card_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", nargs="*", type=Path)
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for card in args.cards or [model_card_path("brain_age_resnet")]:
        mean = occlusion(card, args.split).mean(0)
        print(f"{card}: age {mean[0]:.1f}; " + ", ".join(f"{c} {v:.1f}" for c, v in zip(CASES, mean[1:], strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
