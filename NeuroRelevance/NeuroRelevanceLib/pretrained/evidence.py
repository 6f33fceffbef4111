"""The evidence behind a demo card's recommended preset: chosen on development subjects, measured on a fresh cohort.

For each demo model, :func:`score_card` regenerates a split's subjects with their ground truth
(``heldout.held_out_subjects(split=..., truth=...)``) and scores every LRP preset (and the gradient
family) with :mod:`NeuroRelevanceLib.metrics.groundtruth` inside the brain, beside the oracle and chance.
The mask is the card's ``ground_truth.mask_labels`` (``heldout.ground_truth_labels``):

- ``ad_cnn``: AD-like subjects, the AD logit, mask = label 1, twin = the same subject as a control;
- ``brain_age_resnet``: controls aged >= ``min_age``, the predicted age, mask = labels 2 and 3, twin =
  the subject without any effect;
- ``lesion_unet``: every subject, the lesion logits over the predicted lesion, mask = labels 1 and 2 (core
  and penumbra), twin = the subject without lesions.

The protocol (:data:`PROTOCOL`), the same for every card: the preset is chosen on the DEVELOPMENT
subjects (``split="development"``: the validation split and the former test split of the training
cohort; the validation split alone holds too few eligible subjects for some cards, e.g. 8 old controls
for the brain-age model, and the former test split had already been used to choose presets); then the
card's fresh held-out cohort (``split="held_out"``, another generator seed) is scored once for the
recorded figure. :func:`evidence_record` takes the choice from the development scores alone, so the
held-out scores cannot change it.

:func:`choose` (:mod:`.rule`) is the rule: among the presets whose maps conserve (median conservation error at most
``MAX_CONSERVATION_ERROR``; all presets if none does) and that put at least ``FOLD`` × chance of their
positive relevance (inside the brain) into the true mask, the one that conserves best (smallest median
conservation error); if none does, the conserving one with the highest mass accuracy. A preset that
passes the bar without conserving is named in the reason as left out. The bar is on the *mean*
over the subjects (mean mass accuracy against mean chance); each method's weakest subject
(``min_subject_fold``: the smallest per-subject mass accuracy / chance) is recorded beside it. The card
records both score sets (``evidence.development``, ``evidence.held_out``), the preset and the reason in
words, which gives the held-out figure, says when it falls below the bar, and gives the development
figure the choice was made on (``recommendation_reason``; :func:`write_evidence`,
``benchmarks/bench_groundtruth.py --write-evidence``). A fresh cohort that later choices have seen is retired
(``training.held_out_cohort.retired``) and replaced by a new one; the chosen preset's figure on the cohort retired
last is recorded beside the fresh one for disclosure (``evidence.retired_held_out``), never used to choose.
How figures are worded (significant digits kept, folds at supported precision, "at the bar within rounding") is
:mod:`.figures`; :func:`rebuilt_reason` rewrites a reason from its record without rescoring
(:func:`rewrite_reason`, ``bench_groundtruth.py --rewrite-reasons``). :func:`.rule.decide` returns the rule's whole
decision (:class:`.rule.Choice`), which the reason (:func:`.rule.why_text`) and the plain line (``recommendation``)
both word.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .figures import DIGITS, FOLD, NEAR_BAR, at_bar, figure, fold_bounds, kept, meets_bar, shown_fold  # noqa: F401
from .rule import (  # noqa: F401
    MAX_CONSERVATION_ERROR,
    RULE,
    Choice,
    choose,
    choose_recorded,
    decide,
    decide_recorded,
    decide_scores,
    why_text,
)

OTHER_METHODS = ("gradient", "gradient_x_input", "guided_backprop", "gradcam", "gradcam++")
SETUP = {  # model -> (subject selection, twin, what is explained in words); the mask: ground_truth.mask_labels
    "ad_cnn": ({"diagnosis": "AD"}, "ad", "AD-like atrophy, AD-like subjects, AD logit"),
    "brain_age_resnet": ({"diagnosis": "control"}, "all",
                         "age-related grey matter and ventricles, controls, predicted age"),
    "lesion_unet": ({}, "all", "lesion (core and penumbra), lesion logits over the predicted lesion"),
}
SCORES = ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
          "region_precision", "outside_share")
DEVELOPMENT = "validation and former test split of the training cohort"
PROTOCOL = (f"the preset is chosen on the development subjects ({DEVELOPMENT}, for every card) by the rule; "
            "then the fresh held-out cohort (training.held_out_cohort: same generator, another seed), which no "
            "training run, seed or preset choice has seen, is scored once; the choice is not revisited")


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
    from ..preprocessing import box_keywords

    x = torch.from_numpy(subject.x[None])
    zb = box_keywords(subject.x[None], loaded.card.input.normalization,   # as the product does (jobs.py)
                      support=subject.support)
    kwargs = _target(name, loaded.model, loaded.card, subject)
    maps, seconds, conservation = {}, {}, {}
    for method in methods:
        if method.startswith("lrp:"):
            e = explain(loaded.model, x, "lrp", preset=method[4:], device="cpu", **zb, **kwargs)
            conservation[method] = float(e.max_conservation_error)
        else:
            e = explain(loaded.model, x, method, device="cpu", **kwargs)
        seconds[method] = float(e.seconds)
        maps[method] = e.relevance[0].sum(0).double().numpy()
    return maps, seconds, conservation


def methods_scored(presets: tuple[str, ...] | None = None, other_methods: bool = True) -> list[str]:
    """The methods :func:`score_card` scores: "lrp:<preset>" for ``presets`` (default every preset), then the
    gradient family when ``other_methods``."""
    from ..engine import PRESETS

    return [f"lrp:{p}" for p in (presets or PRESETS)] + (list(OTHER_METHODS) if other_methods else [])


def score_card(name: str, card_path: str | Path, *, split: str = "held_out", max_subjects: int = 100,
               min_age: float = 50.0, presets: tuple[str, ...] | None = None, other_methods: bool = True,
               log: Callable[[str], None] | None = print) -> tuple[Any, dict]:
    """The ground-truth report (``metrics.groundtruth_report``) of a demo model over the subjects of
    ``split`` (``heldout.SPLITS``: "held_out" = the fresh cohort, "development", "val", ...), and per
    method its mean seconds, weakest subject's fold and (LRP) median conservation error.

    ``other_methods=False`` scores the LRP presets only (all that :func:`choose` needs)."""
    from ..metrics.groundtruth_report import ground_truth_report
    from ..models import load_model
    from .heldout import ground_truth_labels, held_out_subjects

    labels = ground_truth_labels(card_path)
    loaded = load_model(card_path, device="cpu")
    select, twin, _ = SETUP[name]
    methods = methods_scored(presets, other_methods)
    maps: dict[str, list] = {m: [] for m in methods}
    seconds: dict[str, list] = {m: [] for m in methods}
    conservation: dict[str, list] = {m: [] for m in methods if m.startswith("lrp:")}
    masks: list[np.ndarray] = []
    brains: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    atlases: list[np.ndarray | None] = []
    names: list[str] = []
    subjects = held_out_subjects(card_path, split=split, truth=twin, diagnosis=select.get("diagnosis"),
                                 min_age=min_age if name == "brain_age_resnet" else None)
    for subject in subjects:
        if len(masks) >= max_subjects:
            break
        mask = np.isin(subject.labels, labels)
        brain, change = subject.brain, subject.change
        if brain is None or change is None:
            raise ValueError(f"subject {subject.index} has no ground truth: build it with truth=")
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
    extra = {m: {"seconds": float(np.mean(seconds[m])), "min_subject_fold": float(folds[m].min()),
                 **({"conservation_error": float(np.median(conservation[m]))} if m in conservation else {})}
             for m in methods}
    return report, extra


def subject_folds(per_subject: Any) -> Any:
    """Per subject (rows) and method (columns): mass accuracy / that subject's chance."""
    mass = per_subject.pivot(index="subject", columns="method", values="mass_accuracy")
    return mass.div(mass["chance"], axis=0)


def _as_scores(table: Any, extra: dict) -> dict:
    return {"chance": {"mass_accuracy": float(table.loc["chance", "mass_accuracy"])},
            "methods": {m: {"mass_accuracy": float(table.loc[m, "mass_accuracy"]), **e} for m, e in extra.items()}}


def recommend(table: Any, extra: dict, fold: float = FOLD) -> tuple[str, str]:
    """(preset, reason in words) from one set of scores (e.g. validation, ``pretrained.selection``)."""
    preset, why = choose(table, extra, fold)
    cons = extra[f"lrp:{preset}"]["conservation_error"]
    return preset, (f"{preset}: on the subjects scored {figure(_as_scores(table, extra), f'lrp:{preset}')}, "
                    f"conservation error {cons:.2g}; {why}")


def reason_text(preset: str, why: str, evidence: dict, fold: float = FOLD, *, name: str | None = None) -> str:
    """The card's ``recommendation_reason`` from its recorded ``evidence``: the fresh held-out figure (with
    "below the bar" when it is), the retired cohort's (worded for card ``name``: ``cards.retired_clause``),
    then the development figure the choice was made on, then the rule's why."""
    from .cards import retired_clause

    method = f"lrp:{preset}"
    dev, held = evidence["development"], evidence["held_out"]
    entry, chance = held["methods"][method], held["chance"]["mass_accuracy"]
    below = not meets_bar(entry["mass_accuracy"], chance, fold) and not at_bar(entry["mass_accuracy"], chance, fold)
    verdict = f", below the {fold:g}× bar" if below else ""
    retired = evidence.get("retired_held_out")
    disclosed = "" if retired is None else (
        f"; on the retired cohort seed {retired['cohort_seed']} ({retired['n_subjects']} subjects"
        f"{retired_clause(name, int(retired['cohort_seed']) - int(dev['cohort_seed']))}): "
        f"{figure(retired, method, what=' there')}")
    return (f"{preset}: on {held['n_subjects']} fresh held-out subjects (cohort seed {held['cohort_seed']}, scored "
            f"once after the choice) {figure(held, method, verdict)}, conservation error "
            f"{entry['conservation_error']:.2g}{disclosed}; chosen on {dev['n_subjects']} development subjects "
            f"({DEVELOPMENT}): {figure(dev, method, what=' there')}; {why}")


def rebuilt_reason(name: str, card: Mapping, fold: float = FOLD) -> str:
    """Card ``name``'s ``recommendation_reason`` rebuilt from its recorded ``evidence`` (a card JSON dict) with
    :func:`reason_text`, without rescoring anything; the rule's choice on the record must be the card's preset."""
    evidence = card["evidence"]
    preset, why = choose_recorded(evidence["development"])
    if preset != card["recommended_preset"]:
        raise ValueError(f"{name}: the rule picks {preset} on the recorded development scores, "
                         f"the card recommends {card['recommended_preset']}")
    return reason_text(preset, why, dict(evidence), fold, name=name)


def _count(report: Any) -> int:
    return int(report.per_subject.subject.nunique())


def _indices(report: Any) -> list[int]:
    return sorted(int(s.split("-")[-1]) for s in report.per_subject.subject.unique())


def _scores(report: Any, extra: dict, cohort_seed: int) -> dict:
    table = report.table

    def row(index: str) -> dict:
        return {k: kept(float(table.loc[index, k])) for k in SCORES if k in table.columns
                and table.loc[index, k] == table.loc[index, k]}

    return {"n_subjects": _count(report), "cohort_seed": int(cohort_seed), "subjects": _indices(report),
            "chance": row("chance"), "oracle_sigma_1": row("oracle σ=1"),
            "methods": {m: {**row(m), **{k: kept(v) for k, v in e.items()}} for m, e in extra.items()}}


def evidence_record(name: str, card_path: str | Path, development: tuple[Any, dict],
                    held_out: tuple[Any, dict], fold: float = FOLD, *,
                    retired: tuple[Any, dict] | None = None) -> tuple[str, str, dict]:
    """(preset, reason, the card's ``evidence`` entry) from the development scores and the fresh cohort's
    scores (each ``(report, extra)`` of :func:`score_card`). The preset is chosen from the development
    scores alone; the held-out scores only report on it. ``retired``: the scores of the cohort retired last
    (``heldout`` split "retired"), recorded as ``evidence.retired_held_out`` and stated for disclosure."""
    from .heldout import card_json, cohort_source, ground_truth_labels

    (dev, dev_extra), (held, held_extra) = development, held_out
    preset, why = choose(dev.table, dev_extra, fold)     # the choice: development scores only
    evidence = {"protocol": PROTOCOL, "rule": RULE, "explained": SETUP[name][2],
                "mask_labels": list(ground_truth_labels(card_path)),
                "scored": "inside the brain mask; outside_share = share of R+ outside it",
                "script": f"benchmarks/bench_groundtruth.py --write-evidence --card {name}",
                "development": {"split": DEVELOPMENT, **_scores(dev, dev_extra,
                                                                card_json(card_path)["training"]["cohort"]["seed"])},
                "held_out": {"split": "training.held_out_cohort, scored once after the choice",
                             **_scores(held, held_extra, cohort_source(card_path, "held_out")["seed"])}}
    if retired is not None:
        seed = cohort_source(card_path, "retired")["seed"]
        why_retired = next(r["why"] for r in card_json(card_path)["training"]["held_out_cohort"]["retired"]
                           if int(r["seed"]) == seed)
        evidence["retired_held_out"] = {
            "split": "the retired cohort training.held_out_cohort.retired (the last one), scored after the choice "
                     "for disclosure only", "why_retired": why_retired, **_scores(*retired, seed)}
    reason = reason_text(preset, why, evidence, fold, name=name)
    return preset, reason, evidence


def rewrite_reason(name: str, card_path: str | Path) -> str:
    """Rewrite card ``name``'s ``recommendation_reason`` from its recorded evidence (:func:`rebuilt_reason`: a new
    wording, no rescoring); every other field is written back as it was read."""
    path = Path(card_path)
    card = json.loads(path.read_text())
    card["recommendation_reason"] = rebuilt_reason(name, card)
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card["recommendation_reason"]


def write_evidence(card_path: str | Path, preset: str, reason: str, evidence: dict) -> None:
    """Record the evidence, the recommended preset and its reason in the card (JSON)."""
    path = Path(card_path)
    card = json.loads(path.read_text())
    card["recommended_preset"] = preset
    card["recommendation_reason"] = reason
    card["evidence"] = evidence
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
