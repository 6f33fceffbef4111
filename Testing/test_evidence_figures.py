"""How the evidence's figures are kept and shown: records keep six significant digits (a small chance survives),
a fold is shown only at the precision its recorded mass and chance support, never across the bar, and the
bundled cards' reasons are rebuilt from their records (no rescoring) with accurate words on the retired cohort."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from NeuroRelevanceLib.metrics.groundtruth_report import ground_truth_report
from NeuroRelevanceLib.pretrained import MODELS, model_card_path
from NeuroRelevanceLib.pretrained.evidence import FOLD, at_bar, figure, rebuilt_reason, shown_fold


def _interval(mass: float, chance: float, decimals: int) -> tuple[float, float]:
    """Every fold a record rounded to ``decimals`` is consistent with (independent of the module)."""
    half = 0.5 * 10.0 ** -decimals
    return (mass - half) / (chance + half), (mass + half) / (chance - half)


def _shown_values(text: str) -> list[float]:
    return [float(v) for v in text.split("–")]


def test_recorded_scores_keep_six_significant_digits():
    """chance = 7/239 = 0.0292887: four decimals (0.0293) would move every fold by 0.04 %; six significant
    digits keep it (and the mass and weakest-subject fold) to 1e-6."""
    from NeuroRelevanceLib.pretrained.evidence import _scores

    brain = np.zeros((8, 6, 5), bool)
    brain.flat[:239] = True
    mask = np.zeros_like(brain)
    mask.flat[:7] = True
    share = 0.2123456
    relevance = np.where(mask, share / 7, np.where(brain, (1 - share) / 232, 0.0))
    report = ground_truth_report({"lrp:x": [relevance] * 2}, [mask] * 2, brains=[brain] * 2,
                                 changes=[mask.astype(float)] * 2, names=["sub-0000", "sub-0001"])
    extra = {"lrp:x": {"seconds": 0.123456789, "min_subject_fold": share / (7 / 239), "conservation_error": 0.0}}
    scores = _scores(report, extra, 2)
    chance = scores["chance"]["mass_accuracy"]
    entry = scores["methods"]["lrp:x"]
    assert chance == pytest.approx(7 / 239, rel=2e-6) and chance != round(7 / 239, 4)
    assert entry["mass_accuracy"] == pytest.approx(share, rel=2e-6)
    assert entry["min_subject_fold"] == pytest.approx(share * 239 / 7, rel=2e-6)
    assert entry["mass_accuracy"] / chance == pytest.approx(share * 239 / 7, rel=5e-6)
    assert len(repr(chance).split(".")[1].lstrip("0")) <= 6          # rounded, not the float's 17 digits


@pytest.mark.parametrize("decimals", [4, 6])
def test_a_shown_fold_is_one_the_recorded_figures_support(decimals):
    """For many true (mass, chance) pairs, recorded at ``decimals``: the fold shown holds the true fold at one
    decimal (or shows the range when the record cannot tell), and is never on the other side of the bar; within
    0.05 of the bar no number is shown at all (at_bar)."""
    rng = np.random.default_rng(0)
    for _ in range(3000):
        chance = rng.uniform(0.005, 0.1)
        fold = rng.choice([rng.uniform(0.5, 12.0), FOLD + rng.uniform(-0.15, 0.15)])
        mass = min(fold * chance, 0.99)
        rec_mass, rec_chance = round(mass, decimals), round(chance, decimals)
        if decimals > 4 and min(len(repr(v).split(".")[1]) for v in (rec_mass, rec_chance)) < decimals:
            continue                    # a trailing zero: the module reads it as four decimals (more cautious)
        lo, hi = _interval(rec_mass, rec_chance, decimals)
        near = lo <= FOLD + 0.05 and hi >= FOLD - 0.05
        assert at_bar(rec_mass, rec_chance) == near, (rec_mass, rec_chance)
        if near:
            continue
        values = _shown_values(shown_fold(rec_mass, rec_chance))
        true = mass / chance
        assert values[0] - 0.05 <= true < values[-1] + 0.05, (true, values)
        assert values[0] - 0.05 <= lo and hi < values[-1] + 0.05, (lo, hi, values)
        meets = rec_mass >= FOLD * rec_chance                       # evidence's own test, on the record
        assert all((v >= FOLD) == meets for v in values), (rec_mass, rec_chance, values)


def test_the_verifiers_folds_are_what_the_lesion_card_shows():
    """The independent recomputation (verify8: fresh cohort 7.263, retired 8.747) against the lesion card's
    record: 7.27 and 8.76 at two decimals were false precision; the shown folds hold the true ones."""
    raw = json.loads(model_card_path("lesion_unet").read_text())
    for part, true in (("held_out", 7.263), ("retired_held_out", 8.747)):
        scores = raw["evidence"][part]
        values = _shown_values(shown_fold(scores["methods"]["lrp:epsilon"]["mass_accuracy"],
                                          scores["chance"]["mass_accuracy"]))
        assert values[0] - 0.05 <= true < values[-1] + 0.05, (part, values)
    assert shown_fold(0.2123, 0.0292) == "7.3" and shown_fold(0.1814, 0.0207) == "8.7–8.8"


@pytest.mark.parametrize("fold", [FOLD - 0.3, FOLD - 0.05, FOLD - 0.004, FOLD, FOLD + 0.03, FOLD + 0.2])
def test_the_technical_figure_near_the_bar_says_so_and_keeps_the_verdict(fold):
    chance = 0.0559
    scores = {"chance": {"mass_accuracy": chance},
              "methods": {"m": {"mass_accuracy": round(fold * chance, 4), "min_subject_fold": 4.4}}}
    text = figure(scores, "m")
    mass = scores["methods"]["m"]["mass_accuracy"]
    meets = mass >= FOLD * chance
    lo, hi = _interval(mass, chance, 4)
    if lo <= FOLD + 0.05 and hi >= FOLD - 0.05:
        assert f"at the {FOLD:g}× bar within rounding" in text, text
        assert ("below it on the recorded figures" in text) == (not meets), text
        assert not re.search(r"\d\.\d+× chance", text), text
    else:
        shown = re.search(r"\(([0-9.–]+)× chance", text).group(1)
        assert all((v >= FOLD) == meets for v in _shown_values(shown)), text
    assert "4.4× on the weakest" in text


@pytest.mark.parametrize("name", MODELS)
def test_bundled_reason_is_rebuilt_from_the_record_at_supported_precision(name):
    """The reason is what the record gives (no rescoring); its folds have one decimal (none with two), each
    containing the record's own fold interval; the retired cohort's clause is the card's own."""
    raw = json.loads(model_card_path(name).read_text())
    reason = raw["recommendation_reason"]
    assert rebuilt_reason(name, raw) == reason
    assert not re.search(r"\d\.\d\d×", reason), reason
    method = f"lrp:{raw['recommended_preset']}"
    for part in ("held_out", "retired_held_out", "development"):
        scores = raw["evidence"][part]
        lo, hi = _interval(scores["methods"][method]["mass_accuracy"], scores["chance"]["mass_accuracy"], 4)
        shown = f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}–{hi:.1f}"
        assert f"({shown}× chance {scores['chance']['mass_accuracy']:.3f}" in reason, (part, shown, reason)


def test_retired_cohort_is_described_per_card():
    """Seed 1 was retired for every card because ad_cnn candidate runs were scored on it; for the other two
    cards it was scored once under the earlier protocol and no choice of theirs was made on it. The card's
    retired[].why (as cards.held_out_cohort writes it), the evidence's copy and the reason say so, per card."""
    from NeuroRelevanceLib.pretrained.cards import held_out_cohort

    for name in MODELS:
        raw = json.loads(model_card_path(name).read_text())
        cohort = raw["training"]["held_out_cohort"]
        logged = {k: v for k, v in cohort.items() if k != "scored"}   # the scoring log: held_out_log
        assert held_out_cohort(name, raw["training"]["cohort"]["seed"]) == logged
        why = cohort["retired"][-1]["why"]
        assert raw["evidence"]["retired_held_out"]["why_retired"] == why
        assert "ad_cnn candidate runs" in why and "retired for every card" in why
        reason = raw["recommendation_reason"]
        clause = reason[reason.index("on the retired cohort"):reason.index("; chosen on")]
        assert "earlier choices had seen" not in clause
        if name == "ad_cnn":
            assert "so it no longer is unseen" in why and "ad_cnn candidate runs" in clause
        else:
            assert "scored once" in why and "earlier protocol" in why and "no choice for this card" in why
            assert "for this card scored once before" in clause and "ad_cnn candidate runs" in clause, clause
