"""Evidence-based recommendations: the rule on hand-made tables, and the bundled cards' recorded evidence
checked against a freshly regenerated held-out subject (independent of the recorded numbers)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from NeuroRelevanceLib.pretrained import MODELS, model_card_path
from NeuroRelevanceLib.pretrained.evidence import FOLD, recommend


def _table(mass: dict, chance: float) -> tuple[pd.DataFrame, dict]:
    rows = {f"lrp:{p}": {"mass_accuracy": m} for p, (m, _) in mass.items()}
    rows["chance"] = {"mass_accuracy": chance}
    extra = {f"lrp:{p}": {"conservation_error": c} for p, (_, c) in mass.items()}
    return pd.DataFrame.from_dict(rows, orient="index"), extra


def test_rule_prefers_the_best_conserving_preset_above_five_times_chance():
    table, extra = _table({"a": (0.40, 0.5), "b": (0.31, 0.03), "c": (0.20, 0.0)}, chance=0.06)
    preset, reason = recommend(table, extra)
    assert preset == "b"                        # a is stronger but loses half the logit; c is below 5x
    assert "5.2× chance 0.060" in reason and "conservation error 0.03" in reason and "a 0.40" in reason


def test_rule_falls_back_to_the_highest_mass_and_says_so():
    table, extra = _table({"a": (0.10, 0.5), "b": (0.20, 0.03)}, chance=0.06)
    preset, reason = recommend(table, extra)
    assert preset == "b" and f"no preset reaches {FOLD:g}× chance" in reason


@pytest.mark.parametrize("name", MODELS)
def test_bundled_card_records_its_evidence_and_follows_the_rule(name):
    card = json.loads(model_card_path(name).read_text())
    evidence = card.get("evidence")
    if evidence is None:
        pytest.skip(f"{name}: no evidence recorded yet (benchmarks/bench_groundtruth.py --write-evidence)")
    methods = evidence["methods"]
    chance = evidence["chance"]["mass_accuracy"]
    table = pd.DataFrame({m: {"mass_accuracy": v["mass_accuracy"]} for m, v in methods.items()}).T
    table.loc["chance"] = chance
    assert recommend(table, {m: v for m, v in methods.items() if m.startswith("lrp:")})[0] \
        == card["recommended_preset"]
    assert card["recommendation_reason"].startswith(card["recommended_preset"] + ":")
    assert evidence["held_out_subjects"] >= 5


def test_ad_card_recommendation_finds_the_atrophy_on_a_regenerated_subject():
    """Recompute, don't trust the record: one held-out AD-like subject, the card's preset, ≥ 5x chance."""
    from NeuroRelevanceLib.engine import explain
    from NeuroRelevanceLib.metrics.groundtruth import GroundTruth
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.preprocessing import box_bounds
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    path = model_card_path("ad_cnn")
    loaded = load_model(path, device="cpu")
    subject = next(held_out_subjects(path, diagnosis="AD", truth="ad"))
    low, high = box_bounds(subject.x[None], loaded.card.input.normalization)   # the product's zB box (jobs.py)
    e = explain(loaded.model, torch.from_numpy(subject.x[None]), preset=loaded.card.recommended_preset,
                target=1, low=torch.from_numpy(low), high=torch.from_numpy(high), device="cpu")
    truth = GroundTruth(subject.labels == 1, brain=subject.brain)
    score = truth.score(e.relevance[0, 0].numpy())
    assert score["mass_accuracy"] >= FOLD * truth.chance()["mass_accuracy"], score
    assert np.isfinite(e.max_conservation_error)


def test_front_ends_show_why_a_preset_is_recommended():
    """The Slicer panel and the web viewer show panel.card_summary; the demo and compare print the same line."""
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.panel import card_summary, recommendation_text

    card = read_card(model_card_path("ad_cnn"))
    text = recommendation_text(card)
    assert text.startswith(f"Recommended preset {card.recommended_preset}: ") and "× chance" in text
    assert text in card_summary(card)
    bare = card.__class__(**{**card.__dict__, "recommendation_reason": ""})
    assert recommendation_text(bare).endswith("the card gives no evidence for it")


@pytest.mark.parametrize("name", MODELS)
def test_front_ends_say_when_no_preset_reaches_the_bar(name):
    """A card whose evidence falls short of FOLD x chance must say so wherever its preset is shown,
    not only show a number: the panel line carries the reason's verdict for every bundled card."""
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.panel import recommendation_text

    card = read_card(model_card_path(name))
    evidence = json.loads(model_card_path(name).read_text()).get("evidence")
    if evidence is None:
        pytest.skip(f"{name}: no evidence recorded")
    mass = evidence["methods"][f"lrp:{card.recommended_preset}"]["mass_accuracy"]
    reaches = mass >= FOLD * evidence["chance"]["mass_accuracy"]
    text = recommendation_text(card)
    assert (f"no preset reaches {FOLD:g}× chance" in text) == (not reaches), text
    short = card.__class__(**{**card.__dict__, "recommendation_reason":
                              f"{card.recommended_preset}: 0.20 in the mask (1.3× chance 0.159); "
                              "no preset reaches 5× chance; it puts the most (others: a 0.1)"})
    assert recommendation_text(short) == (f"Recommended preset {card.recommended_preset}: 0.20 in the mask "
                                          "(1.3× chance 0.159); no preset reaches 5× chance")
