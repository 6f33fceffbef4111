"""Regenerate a demo model's held-out test subjects from its card, fed through the product's path.

A demo card's ``training`` entry names the cohort generator, its seed, spacing and size, and the
subject index range of the test split. Each test subject is regenerated on its own (the
generator draws every subject from ``SeedSequence([seed, index])``), then prepared exactly as a
user's scan would be: :func:`NeuroRelevanceLib.preprocessing.prepare_input` with the card
(resampling onto the card's grid, normalisation). Its ground-truth mask is resampled onto the same
grid (nearest neighbour). With ``truth="ad"`` or ``"all"`` each subject also carries its ground
truth on the model grid: the brain mask, the subject's own warped atlas labels, and the true change
map ``sum_c |subject_c - twin_c| / sd_c`` against its twin without the AD-like effect ("ad": the
same subject as a control) or without any effect ("all"; lesion subjects: without lesions).
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
    """One regenerated test subject on the model grid."""

    index: int
    subject_id: str
    x: np.ndarray            # (C, D, H, W) model input
    labels: np.ndarray       # (D, H, W) atrophy labels (T1) or lesion labels (lesion model)
    age: float | None = None
    diagnosis: str | None = None
    brain: np.ndarray | None = None    # (D, H, W) bool, with ``truth``
    change: np.ndarray | None = None   # (D, H, W) true change against the twin, with ``truth``
    atlas: np.ndarray | None = None    # (D, H, W) atlas labels warped into the subject (T1 models)


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


def held_out_indices(card_path: str | Path, split: str = "test") -> list[int]:
    """Subject indices of the held-out test split (or ``split``: "val", "train") recorded in a demo card."""
    first, stop = card_json(card_path)["training"]["split"][split]
    return list(range(int(first), int(stop)))


def held_out_subjects(card_path: str | Path, *, indices: list[int] | None = None,
                      diagnosis: str | None = None, min_age: float | None = None,
                      truth: str | None = None) -> Iterator[HeldOutSubject]:
    """Yield the card's held-out test subjects (or ``indices``), optionally only one diagnosis or
    ages >= ``min_age`` (T1 models); ``truth`` ("ad" or "all") adds the ground truth (module doc)."""
    if truth not in (None, "ad", "all"):
        raise ValueError(f"truth={truth!r} must be None, 'ad' or 'all'")
    card = read_card(card_path)
    raw = card_json(card_path)
    source = raw.get("training", {}).get("cohort")
    if not source:
        raise ValueError(f"{Path(card_path).name} has no training.cohort entry: only the demo "
                         f"models' cards record how to regenerate their test subjects")
    chosen = held_out_indices(card_path) if indices is None else list(indices)
    seed, spacing = int(source["seed"]), float(source["spacing"])
    if "lesion" in source["generator"]:
        from ..demo.lesions import synthesize_lesion_subject

        for i in chosen:
            lesion = synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=source["channels"])
            x, lab, target = _prepare(list(lesion.channels), lesion.lesion, lesion.grid, card)
            subject = HeldOutSubject(i, lesion.subject_id, x, lab)
            if truth:
                healthy = synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=source["channels"],
                                                    lesions=False)
                _add_truth(subject, lesion.channels, healthy.channels, lesion.brain, None, lesion.grid, target)
            yield subject
        return
    from ..demo.cohort import cohort_table, synthesize_subject

    table = cohort_table(int(source["n_subjects"]), seed=seed)
    options = generator_options(card_path)
    for i in chosen:
        row = table.iloc[i]
        if diagnosis is not None and row["diagnosis"] != diagnosis:
            continue
        if min_age is not None and row["age"] < min_age:
            continue
        s = synthesize_subject(i, float(row["age"]), str(row["diagnosis"]), **options)
        x, lab, target = _prepare([s.image], s.atrophy, s.grid, card)
        subject = HeldOutSubject(i, s.subject_id, x, lab, float(row["age"]), str(row["diagnosis"]))
        if truth:
            twin = synthesize_subject(i, float(row["age"]), "control" if truth == "ad" else str(row["diagnosis"]),
                                      effects=truth == "ad", **options)
            _add_truth(subject, s.image[None], twin.image[None], s.brain, s.atlas_labels, s.grid, target)
        yield subject


def _prepare(channels_kji: list[np.ndarray], labels_kji: np.ndarray, grid: Grid,
             card: ModelCard) -> tuple[np.ndarray, np.ndarray, Grid]:
    prepared = prepare_input([(c, grid) for c in channels_kji], card)
    labels = resample(labels_kji.astype(np.float32), grid, prepared.grid, "nearest")
    return prepared.array, np.rint(labels).astype(np.uint8), prepared.grid


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
