"""Regenerate a demo model's subjects from its card, fed through the product's path.

A demo card's ``training`` entry names the cohort generator, its seed, spacing and size, and the
subject index ranges of its splits. The subjects a split names (:data:`SPLITS`) are:

- ``"train"``, ``"val"``, ``"test"``: those index ranges of the training cohort;
- ``"development"``: validation and the former test split together. The test split was used to choose
  the LRP preset before the card recorded a fresh cohort, so it is development data now: the preset is
  chosen on these subjects (``pretrained.evidence``);
- ``"held_out"``: the card's fresh held-out cohort (``training.held_out_cohort``: the same generator and
  options as the training cohort, another seed, so other anatomies), which no training run, seed or
  preset choice has seen; the recommended preset's figure is measured on it, once, after the choice;
- ``"retired"``: the fresh cohort retired last (``training.held_out_cohort.retired``: seeds that choices have
  seen, each with why), scored after the choice only to disclose its figure beside the fresh one. A retired
  seed cannot be set back as the fresh cohort.

Each subject is regenerated on its own (the generator draws every subject from
``SeedSequence([seed, index])``), then prepared exactly as a user's scan would be:
:func:`NeuroRelevanceLib.preprocessing.prepare_input` with the card (resampling onto the card's grid,
normalisation). Its ground-truth mask is resampled onto the same grid (nearest neighbour). With
``truth="ad"`` or ``"all"`` each subject also carries its ground truth on the model grid: the brain
mask, the subject's own warped atlas labels, and the true change map ``sum_c |subject_c - twin_c| / sd_c``
against its twin without the AD-like effect ("ad": the same subject as a control) or without any
effect ("all"; lesion subjects: without lesions). Which labels are the ground truth is the card's
``ground_truth.mask_labels`` (:func:`ground_truth_labels`).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import Grid
from ..models import ModelCard, read_card
from ..preprocessing import prepare_input, resample


@dataclass
class HeldOutSubject:
    """One regenerated subject on the model grid."""

    index: int
    subject_id: str
    x: np.ndarray            # (C, D, H, W) model input
    labels: np.ndarray       # (D, H, W) atrophy labels (T1) or lesion labels (lesion model)
    age: float | None = None
    diagnosis: str | None = None
    brain: np.ndarray | None = None    # (D, H, W) bool, with ``truth``
    change: np.ndarray | None = None   # (D, H, W) true change against the twin, with ``truth``
    atlas: np.ndarray | None = None    # (D, H, W) atlas labels warped into the subject (T1 models)
    cohort_seed: int = 0               # the generated cohort it belongs to (training or fresh held-out)
    support: np.ndarray | None = None  # (C, D, H, W) bool: where the scan has data (ModelInput.support)


def card_json(card_path: str | Path) -> dict:
    """The raw JSON of a card (with the demo-only ``training`` entry that ModelCard drops)."""
    return json.loads(Path(card_path).read_text())


def input_bounds(card: ModelCard) -> tuple[float, float] | None:
    """The input range the card's normalisation guarantees ((0, 1) for percentile/minmax/scale), else None."""
    kind = card.input.normalization.get("type")
    return (0.0, 1.0) if kind in ("percentile", "minmax", "scale") else None


def generator_options(card_path: str | Path) -> dict:
    """Keyword arguments of ``demo.synthesize_subject`` that remake the card's T1 cohort: seed,
    spacing, atrophy and age patterns, the age-related loss at 90 and skull stripping (older cards:
    ribbon, frontoparietal, the generator's default loss, scalp kept)."""
    from ..demo.atrophy import AtrophyParams

    source = card_json(card_path).get("training", {}).get("cohort") or {}
    if not source or "lesion" in source.get("generator", ""):
        raise ValueError(f"{Path(card_path).name} does not record a synthetic T1 cohort")
    return {"seed": int(source["seed"]), "spacing": float(source["spacing"]),
            "params": AtrophyParams(pattern=source.get("pattern", "ribbon"),
                                    age_pattern=source.get("age_pattern", "frontoparietal"),
                                    age_loss_at_90=float(source.get("age_loss_at_90",
                                                                    AtrophyParams.age_loss_at_90))),
            "skull_strip": bool(source.get("skull_strip", False))}


#: the subject selections a demo card names (module docstring)
SPLITS = ("train", "val", "test", "development", "held_out", "retired")


def ground_truth_labels(card_path: str | Path) -> tuple[int, ...]:
    """The label values of a demo card's ground-truth mask (``ground_truth.mask_labels``, e.g. (1,) for
    the AD-like atrophy); a clear error for a card that names them only in words, or not at all."""
    name = Path(card_path).name
    truth = card_json(card_path).get("ground_truth") or {}
    labels = truth.get("mask_labels")
    if labels is None:
        words = f" (in words: {truth['mask']!r})" if truth.get("mask") else ""
        raise ValueError(f"{name} does not list its ground-truth labels{words}: add "
                         f'"mask_labels": [...] to its "ground_truth" entry, the label values of the mask '
                         f"an explanation should find (e.g. [1] for the demo cohort's AD-like atrophy)")
    if not isinstance(labels, list) or not labels or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in labels):
        raise ValueError(f'{name}: "ground_truth.mask_labels" must be a non-empty list of positive label '
                         f"values, not {labels!r}")
    return tuple(labels)


def cohort_source(card_path: str | Path, split: str = "test") -> dict:
    """The generator entry of the cohort ``split`` is drawn from: ``training.cohort``, or for
    ``"held_out"`` the same with the fresh cohort's seed and size (``training.held_out_cohort``; a retired seed
    is refused), for ``"retired"`` with the seed retired last."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {SPLITS}")
    name = Path(card_path).name
    training = card_json(card_path).get("training") or {}
    source = training.get("cohort")
    if not source:
        raise ValueError(f"{name} has no training.cohort entry: only the demo models' cards record how "
                         f"to regenerate their subjects")
    if split not in ("held_out", "retired"):
        return dict(source)
    fresh = training.get("held_out_cohort")
    if not fresh:
        raise ValueError(f"{name} records no fresh held-out cohort (training.held_out_cohort), an older card: "
                         f"its test split has informed choices, so it has no held-out subjects left. Add "
                         f'"held_out_cohort": {{"seed": <a cohort seed no run of this model has used>, '
                         f'"n_subjects": <n>}} to its training entry, or score split="test" '
                         f"(bench_groundtruth.py --split test)")
    retired = {int(r["seed"]): r for r in fresh.get("retired") or []}
    if split == "retired":
        if not retired:
            raise ValueError(f"{name} retires no held-out cohort (training.held_out_cohort.retired is empty)")
        last = list(retired.values())[-1]
        return {**source, "seed": int(last["seed"]), "n_subjects": int(last.get("n_subjects", fresh["n_subjects"]))}
    if int(fresh["seed"]) == int(source["seed"]):
        raise ValueError(f"{name}: training.held_out_cohort has the training cohort's seed {source['seed']}, "
                         f"so its subjects are the training anatomies; give it another seed")
    if int(fresh["seed"]) in retired:
        raise ValueError(f"{name}: training.held_out_cohort seed {int(fresh['seed'])} was retired "
                         f"({retired[int(fresh['seed'])]['why']}), so it is not held out any more; give it a seed "
                         f"no run, seed or preset choice has seen")
    return {**source, "seed": int(fresh["seed"]), "n_subjects": int(fresh["n_subjects"])}


def held_out_indices(card_path: str | Path, split: str = "test") -> list[int]:
    """Subject indices of ``split`` (:data:`SPLITS`; default the test split) in the cohort it is drawn from."""
    source = cohort_source(card_path, split)
    if split in ("held_out", "retired"):
        return list(range(int(source["n_subjects"])))
    ranges = card_json(card_path)["training"]["split"]
    parts = ("val", "test") if split == "development" else (split,)
    return [i for part in parts for i in range(int(ranges[part][0]), int(ranges[part][1]))]


def held_out_subjects(card_path: str | Path, *, split: str = "test", indices: list[int] | None = None,
                      diagnosis: str | None = None, min_age: float | None = None,
                      truth: str | None = None) -> Iterator[HeldOutSubject]:
    """Yield the subjects of ``split`` (:data:`SPLITS`; ``indices``: these indices of that split's cohort),
    optionally only one diagnosis or ages >= ``min_age`` (T1 models); ``truth`` ("ad" or "all") adds
    the ground truth (module doc)."""
    if truth not in (None, "ad", "all"):
        raise ValueError(f"truth={truth!r} must be None, 'ad' or 'all'")
    card = read_card(card_path)
    source = cohort_source(card_path, split)
    chosen = held_out_indices(card_path, split) if indices is None else list(indices)
    seed, spacing, size = int(source["seed"]), float(source["spacing"]), int(source["n_subjects"])
    if outside := [i for i in chosen if not 0 <= i < size]:
        raise ValueError(f"subject indices {outside} lie outside the {size} subjects of the {split!r} cohort "
                         f"(seed {seed})")
    if "lesion" in source["generator"]:
        from ..demo.lesions import synthesize_lesion_subject

        for i in chosen:
            lesion = synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=source["channels"])
            x, lab, target, support = _prepare(list(lesion.channels), lesion.lesion, lesion.grid, card)
            subject = HeldOutSubject(i, lesion.subject_id, x, lab, cohort_seed=seed, support=support)
            if truth:
                healthy = synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=source["channels"],
                                                    lesions=False)
                _add_truth(subject, lesion.channels, healthy.channels, lesion.brain, None, lesion.grid, target)
            yield subject
        return
    from ..demo.cohort import cohort_table, synthesize_subject

    table = cohort_table(size, seed=seed)
    options = {**generator_options(card_path), "seed": seed}
    for i in chosen:
        row = table.iloc[i]
        if diagnosis is not None and row["diagnosis"] != diagnosis:
            continue
        if min_age is not None and row["age"] < min_age:
            continue
        s = synthesize_subject(i, float(row["age"]), str(row["diagnosis"]), **options)
        x, lab, target, support = _prepare([s.image], s.atrophy, s.grid, card)
        subject = HeldOutSubject(i, s.subject_id, x, lab, float(row["age"]), str(row["diagnosis"]),
                                 cohort_seed=seed, support=support)
        if truth:
            twin = synthesize_subject(i, float(row["age"]), "control" if truth == "ad" else str(row["diagnosis"]),
                                      effects=truth == "ad", **options)
            _add_truth(subject, s.image[None], twin.image[None], s.brain, s.atlas_labels, s.grid, target)
        yield subject


def _prepare(channels_kji: list[np.ndarray], labels_kji: np.ndarray, grid: Grid,
             card: ModelCard) -> tuple[np.ndarray, np.ndarray, Grid, np.ndarray | None]:
    prepared = prepare_input([(c, grid) for c in channels_kji], card)
    labels = resample(labels_kji.astype(np.float32), grid, prepared.grid, "nearest")
    return prepared.array, np.rint(labels).astype(np.uint8), prepared.grid, prepared.support


def _add_truth(subject: HeldOutSubject, channels: np.ndarray, twin: np.ndarray, brain: np.ndarray,
               atlas: np.ndarray | None, grid: Grid, target: Grid) -> None:
    """Brain mask, atlas labels and the true change map (all (k, j, i) on ``grid``), on the model grid ``target``."""
    change = np.zeros(target.shape_kji, np.float64)
    for a, b in zip(channels, twin, strict=True):
        inside = a.ravel(order="F")  # the channel's voxels in (i, j, k) order, as the cards' figures were computed
        scale = float(inside[inside != 0].std()) or 1.0
        change += np.abs(resample(a - b, grid, target)) / scale
    subject.change = change
    subject.brain = resample(brain.astype(np.float32), grid, target, "nearest") > 0.5
    if atlas is not None:
        subject.atlas = np.rint(resample(atlas.astype(np.float32), grid, target,
                                         "nearest")).astype(np.int32)
