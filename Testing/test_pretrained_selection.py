"""Model selection on validation subjects only: the rule, the validation split in the scorer, and the
bundled brain-age card's recorded selection (no test subject may take part in choosing the run)."""
from __future__ import annotations

import json

import pytest

from NeuroRelevanceLib.pretrained import model_card_path
from NeuroRelevanceLib.pretrained.selection import select


def _score(seed: int, fold: float, mae: float = 8.0) -> dict:
    return {"train_seed": seed, "fold": fold, "validation_mae": mae}


def test_select_keeps_the_best_validation_fold_then_lower_mae_then_lower_seed():
    assert select([_score(0, 3.0), _score(1, 4.2), _score(2, 4.1)])["train_seed"] == 1
    assert select([_score(0, 4.2, 9.0), _score(1, 4.2, 7.0)])["train_seed"] == 1
    assert select([_score(3, 4.2), _score(1, 4.2)])["train_seed"] == 1


def test_score_card_on_the_validation_split_scores_validation_subjects_only():
    """The scorer itself reads the split from the card: validation indices, never the test ones."""
    from NeuroRelevanceLib.pretrained.evidence import score_card
    from NeuroRelevanceLib.pretrained.heldout import held_out_indices

    path = model_card_path("brain_age_resnet")
    report, extra = score_card("brain_age_resnet", path, max_subjects=1, presets=("epsilon",), split="val",
                               other_methods=False, log=None)
    scored = {int(s.split("-")[-1]) for s in report.per_subject.subject.unique()}
    assert scored and scored <= set(held_out_indices(path, "val"))
    assert not scored & set(held_out_indices(path, "test"))
    assert set(extra) == {"lrp:epsilon"}


def test_brain_age_card_records_a_selection_made_on_validation_subjects_only():
    card = json.loads(model_card_path("brain_age_resnet").read_text())
    training = card["training"]
    record = training["selection"]
    val, test = (set(range(*training["split"][k])) for k in ("val", "test"))
    assert record["split"] == "val" and record["val_range"] == training["split"]["val"]
    assert record["subjects"] and set(record["subjects"]) <= val
    assert not set(record["subjects"]) & test
    text = json.dumps(record)
    assert not any(f"sub-{i:04d}" in text for i in test)     # no test subject named anywhere in the record
    candidates = record["candidates"]
    assert len(candidates) >= 3 and len({c["train_seed"] for c in candidates}) == len(candidates)
    best = max(candidates, key=lambda c: c["fold"])
    assert record["selected_train_seed"] == best["train_seed"] == training["seed"]
    assert record["fold_spread"] == [min(c["fold"] for c in candidates), max(c["fold"] for c in candidates)]
    for c in candidates:   # the same rule as the evidence: the fold is the rule's preset's mass over chance
        assert c["fold"] == pytest.approx(c["mass_accuracy"] / c["chance"], rel=0.01)


def _classifier(name: str, seed: int, fold: float, accuracy: float) -> dict:
    return {"candidate": name, "train_seed": seed, "fold": fold, "validation_mae": None,
            "validation_accuracy": accuracy, "subjects": [105, 129]}


def test_select_ties_on_a_classifier_break_on_validation_accuracy_and_name_candidates_not_seeds():
    """The same rule for the AD classifier: no MAE, so the validation error is 1 - accuracy; two recipes
    with the same training seed (e.g. with and without intensity jitter) are distinct candidates."""
    scores = [_classifier("seed-0", 0, 5.2, 0.96), _classifier("jitter-seed-0", 0, 5.2, 1.0),
              _classifier("seed-1", 1, 5.1, 1.0)]
    assert select(scores)["candidate"] == "jitter-seed-0"
    assert select(scores[:1] + scores[2:])["candidate"] == "seed-0"


def test_selection_record_on_the_development_split_names_its_ranges_and_the_kept_candidate():
    from NeuroRelevanceLib.pretrained.selection import selection_record

    scores = [_classifier("seed-0", 0, 5.2, 0.96), _classifier("jitter-seed-1", 1, 5.4, 1.0)]
    record = selection_record("ad_cnn", scores, {"val": [104, 128], "test": [128, 160]}, 50.0,
                              split="development")
    assert record["split"] == "development"
    assert record["split_ranges"] == {"val": [104, 128], "test": [128, 160]}
    assert record["selected"] == "jitter-seed-1" and record["selected_train_seed"] == 1
    assert [c["candidate"] for c in record["candidates"]] == ["seed-0", "jitter-seed-1"]
    assert "development" in record["subjects_note"] and "held-out" in record["rule"]


def test_kept_run_recommends_the_validation_rule_preset_until_the_held_out_evidence_is_written():
    """A freshly trained card recommends a placeholder preset; the kept run must recommend the preset the rule picked
    on validation, with a reason that says it is validation evidence, not held-out evidence."""
    from NeuroRelevanceLib.pretrained.selection import validation_recommendation

    score = {"train_seed": 2, "preset": "epsilon-gamma-box", "mass_accuracy": 0.2371, "chance": 0.0388,
             "fold": 6.111, "min_subject_fold": 5.28, "validation_mae": 4.1}
    entry = validation_recommendation(score)
    assert entry["recommended_preset"] == "epsilon-gamma-box"
    reason = entry["recommendation_reason"]
    assert reason.startswith("epsilon-gamma-box: 0.24 of the positive relevance")
    assert "6.1× chance 0.039" in reason and "5.3× on the weakest" in reason and "validation subjects" in reason
    from NeuroRelevanceLib.panel import recommendation_text

    card = type("Card", (), {"recommended_preset": entry["recommended_preset"], "recommendation_reason": reason})
    shown = recommendation_text(card)                  # the panel line says the figure is not a held-out one
    assert "no held-out figure yet" in shown and "chosen on the validation subjects" in shown


def test_bundled_brain_age_card_recommends_its_selection_preset_when_it_has_no_evidence():
    card = json.loads(model_card_path("brain_age_resnet").read_text())
    if "evidence" in card:
        pytest.skip("held-out evidence recorded: the evidence tests check the recommendation")
    record = card["training"]["selection"]
    kept = next(c for c in record["candidates"] if c["train_seed"] == record["selected_train_seed"])
    assert card["recommended_preset"] == kept["preset"]
    reason = card["recommendation_reason"]
    assert reason.startswith(kept["preset"] + ":") and "validation" in reason


def test_a_candidate_is_scored_on_the_evidence_rule_preset_never_a_non_conserving_one():
    """The selection uses the evidence rule with its conservation limit: a run whose only preset above the bar
    does not conserve (seed 3 of the AD model: alpha2-beta1, error 4.4) is scored on its best conserving preset,
    so it cannot win on a map that does not add up to the explained value."""
    import pandas as pd

    from NeuroRelevanceLib.pretrained.evidence import MAX_CONSERVATION_ERROR
    from NeuroRelevanceLib.pretrained.selection import candidate_figures

    table = pd.DataFrame.from_dict({"lrp:a": {"mass_accuracy": 0.40}, "lrp:b": {"mass_accuracy": 0.25},
                                    "chance": {"mass_accuracy": 0.06}}, orient="index")
    extra = {"lrp:a": {"conservation_error": 4.4, "min_subject_fold": 5.0},
             "lrp:b": {"conservation_error": 0.13, "min_subject_fold": 3.0}}
    figures = candidate_figures(table, extra)
    assert figures["preset"] == "b" and figures["conservation_error"] == 0.13
    assert figures["fold"] == pytest.approx(0.25 / 0.06, abs=1e-3) and figures["min_subject_fold"] == 3.0
    assert MAX_CONSERVATION_ERROR < 4.4


def test_select_ranks_a_candidate_without_a_conserving_preset_below_every_conserving_one():
    """When none of a run's presets conserves, the evidence rule falls back to all presets; that run must not beat
    a run whose preset conserves, whatever its fold."""
    scores = [{**_classifier("seed-3", 3, 7.1, 1.0), "conservation_error": 4.4},
              {**_classifier("seed-0", 0, 5.0, 1.0), "conservation_error": 2e-5}]
    assert select(scores)["candidate"] == "seed-0"
    assert select(scores[:1])["candidate"] == "seed-3"           # alone, it is still the only run there is


def test_candidate_figures_keep_what_the_evidence_keeps():
    """A candidate's figures keep the evidence's precision (evidence records: 6 significant digits), so a chance of
    0.0292887 is not cut to 0.0293 (a 0.04 % shift of every fold) and both records agree on the same scores."""
    import pandas as pd

    from NeuroRelevanceLib.pretrained.selection import candidate_figures

    mass, chance = 0.212345678, 0.0292887123
    table = pd.DataFrame.from_dict({"lrp:b": {"mass_accuracy": mass}, "chance": {"mass_accuracy": chance}},
                                   orient="index")
    figures = candidate_figures(table, {"lrp:b": {"conservation_error": 0.123456789, "min_subject_fold": 4.56789}})
    assert figures["mass_accuracy"] == 0.212346 and figures["chance"] == 0.0292887
    assert figures["fold"] == float(f"{mass / chance:.6g}") and figures["min_subject_fold"] == 4.56789
    assert figures["conservation_error"] == 0.123457
