"""The evidence behind a demo card's recommended preset: ground-truth scores on its held-out subjects.

For each demo model, :func:`score_card` regenerates the held-out test subjects with their ground
truth (``heldout.held_out_subjects(truth=...)``) and scores every LRP preset and the gradient family
with :mod:`NeuroRelevanceLib.metrics.groundtruth` inside the brain, beside the oracle and chance:

- ``ad_cnn``: AD-like subjects, the AD logit, mask = AD-like label 1, twin = the same subject as a control;
- ``brain_age_resnet``: controls aged >= ``min_age``, the predicted age, mask = labels 2 and 3, twin =
  the subject without any effect;
- ``lesion_unet``: all test subjects, the lesion logits over the predicted lesion, mask = the lesion,
  twin = the subject without lesions.

:func:`recommend` applies one rule to the scores: among the presets that put at least
``FOLD`` × chance of their positive relevance (inside the brain) into the true mask, the one that
conserves best (smallest median conservation error); if none does, the one with the highest mass
accuracy. The bar is on the *mean* over the held-out subjects (mean mass accuracy against mean
chance); each preset's weakest subject (``min_subject_fold``: the smallest per-subject mass accuracy /
chance) is recorded beside it and named in the reason. The card then records the scores (``evidence``),
the preset and the reason in words
(``recommendation_reason``), see :func:`write_evidence` and
``benchmarks/bench_groundtruth.py --write-evidence``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: the recommended preset must put at least this multiple of chance into the true mask
FOLD = 5.0
OTHER_METHODS = ("gradient", "gradient_x_input", "guided_backprop", "gradcam", "gradcam++")
SETUP = {  # model -> (held-out selection, twin, mask labels, mask in words)
    "ad_cnn": ({"diagnosis": "AD"}, "ad", (1,), "AD-like atrophy (label 1), AD-like subjects, AD logit"),
    "brain_age_resnet": ({"diagnosis": "control"}, "all", (2, 3),
                         "age-related grey matter and ventricles (labels 2, 3), controls, predicted age"),
    "lesion_unet": ({}, "all", (1, 2), "lesion (core and penumbra), lesion logits over the predicted lesion"),
}
SCORES = ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
          "region_precision", "outside_share")


def _target(name: str, model: Any, card: Any, subject: Any) -> dict:
    if name == "ad_cnn":
        return {"target": card.output.classes.index("AD")}
    if name == "lesion_unet":   # the lesion the model finds (what a user has); the truth if it finds none
        with torch.no_grad():
            predicted = model(torch.from_numpy(subject.x[None])).argmax(1)[0] == 1
        return {"target": 1, "mask": predicted if predicted.any() else torch.from_numpy(subject.labels > 0)}
    return {"target": None}


def _maps(name: str, loaded: Any, subject: Any, methods: list[str]) -> tuple[dict, dict, dict]:
    """Spatial maps (channels summed), seconds, and LRP conservation errors of every method."""
    from ..explanation.dispatch import explain
    from ..preprocessing import box_bounds

    x = torch.from_numpy(subject.x[None])
    box = box_bounds(subject.x[None], loaded.card.input.normalization)   # as the product does (jobs.py)
    low, high = (None, None) if box is None else (torch.from_numpy(box[0]), torch.from_numpy(box[1]))
    kwargs = _target(name, loaded.model, loaded.card, subject)
    maps, seconds, conservation = {}, {}, {}
    for method in methods:
        if method.startswith("lrp:"):
            e = explain(loaded.model, x, "lrp", preset=method[4:], low=low, high=high, device="cpu", **kwargs)
            conservation[method] = float(e.max_conservation_error)
        else:
            e = explain(loaded.model, x, method, device="cpu", **kwargs)
        seconds[method] = float(e.seconds)
        maps[method] = e.relevance[0].sum(0).double().numpy()
    return maps, seconds, conservation


def score_card(name: str, card_path: str | Path, *, max_subjects: int = 100, min_age: float = 50.0,
               presets: tuple[str, ...] | None = None, split: str = "test",
               other_methods: bool = True,
               log: Callable[[str], None] | None = print) -> tuple[Any, dict]:
    """The ground-truth report (``metrics.groundtruth_report``) of a demo model over its held-out
    subjects, and per method its mean seconds and (LRP) median conservation error.

    ``split="val"`` scores the validation subjects instead (model selection, ``pretrained.selection``);
    ``other_methods=False`` scores the LRP presets only (all that :func:`recommend` needs)."""
    from ..engine import PRESETS
    from ..metrics.groundtruth_report import ground_truth_report
    from ..models import load_model
    from .heldout import held_out_indices, held_out_subjects

    loaded = load_model(card_path, device="cpu")
    select, twin, labels, _ = SETUP[name]
    methods = [f"lrp:{p}" for p in (presets or PRESETS)] + (list(OTHER_METHODS) if other_methods else [])
    maps: dict[str, list] = {m: [] for m in methods}
    seconds: dict[str, list] = {m: [] for m in methods}
    conservation: dict[str, list] = {m: [] for m in methods if m.startswith("lrp:")}
    masks: list[np.ndarray] = []
    brains: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    atlases: list[np.ndarray | None] = []
    names: list[str] = []
    subjects = held_out_subjects(card_path, truth=twin, min_age=min_age if name == "brain_age_resnet" else None,
                                 indices=held_out_indices(card_path, split), **select)
    for subject in subjects:
        if len(masks) >= max_subjects:
            break
        mask = np.isin(subject.labels, labels)
        brain, change = subject.brain, subject.change
        if brain is None or change is None:
            raise ValueError(f"held-out subject {subject.index} has no ground truth: build it with truth=")
        if not (mask & brain).any():
            continue
        subject_maps, secs, cons = _maps(name, loaded, subject, methods)
        for m in methods:
            maps[m].append(subject_maps[m])
            seconds[m].append(secs[m])
        for m, v in cons.items():
            conservation[m].append(v)
        masks.append(mask)
        brains.append(brain)
        changes.append(change)
        atlases.append(subject.atlas)
        names.append(subject.subject_id)
        if log:
            log(f"  {name} {subject.subject_id}: mask {int(mask.sum())} voxels "
                f"({mask[subject.brain].mean():.3f} of the brain)")
    report = ground_truth_report(maps, masks, brains=brains, changes=changes,
                                 atlases=None if atlases[0] is None else atlases, names=names)
    folds = subject_folds(report.per_subject)
    extra = {m: {"seconds": float(np.mean(seconds[m])),
                 **({"conservation_error": float(np.median(conservation[m])),
                     "min_subject_fold": float(folds[m].min())} if m in conservation else {})}
             for m in methods}
    return report, extra


def subject_folds(per_subject: Any) -> Any:
    """Per subject (rows) and method (columns): mass accuracy / that subject's chance."""
    mass = per_subject.pivot(index="subject", columns="method", values="mass_accuracy")
    return mass.div(mass["chance"], axis=0)


def recommend(table: Any, extra: dict, fold: float = FOLD) -> tuple[str, str]:
    """(preset, reason in words) by the rule of the module docstring."""
    chance = float(table.loc["chance", "mass_accuracy"])
    rows = {m[4:]: (float(table.loc[m, "mass_accuracy"]), extra[m]["conservation_error"])
            for m in extra if m.startswith("lrp:")}
    good = {p: v for p, v in rows.items() if v[0] >= fold * chance}
    if good:
        preset = min(good, key=lambda p: (good[p][1], -good[p][0]))
        why = (f"of the presets that put at least {fold:g}× chance of their positive relevance in the true mask, "
               f"it conserves best")
    else:
        preset = max(rows, key=lambda p: rows[p][0])
        why = f"no preset reaches {fold:g}× chance; it puts the most positive relevance in the true mask"
    mass, cons = rows[preset]
    weakest = extra[f"lrp:{preset}"].get("min_subject_fold")
    spread = "" if weakest is None else f" on the mean over the held-out subjects, {weakest:.1f}× on the weakest"
    others = ", ".join(f"{p} {v[0]:.2f}" for p, v in sorted(rows.items(), key=lambda kv: -kv[1][0]) if p != preset)
    return preset, (f"{preset}: {mass:.2f} of the positive relevance in the brain lies in the true mask "
                    f"({mass / chance:.1f}× chance {chance:.3f}{spread}), conservation error {cons:.2g}; {why} "
                    f"(others: {others})")


def evidence_entry(name: str, report: Any, extra: dict) -> dict:
    """What the card records: scores per preset and method, oracle ceilings, chance, the rule."""
    table = report.table

    def row(index: str) -> dict:
        return {k: round(float(table.loc[index, k]), 4) for k in SCORES if k in table.columns
                and table.loc[index, k] == table.loc[index, k]}

    methods = {m: {**row(m), **{k: round(v, 4) for k, v in extra[m].items()}} for m in extra}
    return {"held_out_subjects": int(report.per_subject.subject.nunique()), "explained": SETUP[name][3],
            "scored": "inside the brain mask; outside_share = share of R+ outside it",
            "script": "benchmarks/bench_groundtruth.py --write-evidence",
            "rule": f"among presets with mean mass_accuracy >= {FOLD:g} x mean chance over the held-out "
                    f"subjects, the smallest conservation error; else the highest mass_accuracy "
                    f"(min_subject_fold: the weakest subject's mass_accuracy / chance)",
            "chance": row("chance"), "oracle_sigma_1": row("oracle σ=1"), "methods": methods}


def write_evidence(card_path: str | Path, name: str, report: Any, extra: dict) -> tuple[str, str]:
    """Record the evidence, the recommended preset and its reason in the card (JSON); return both."""
    path = Path(card_path)
    card = json.loads(path.read_text())
    preset, reason = recommend(report.table, extra)
    card["recommended_preset"] = preset
    card["recommendation_reason"] = reason
    card["evidence"] = evidence_entry(name, report, extra)
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return preset, reason
