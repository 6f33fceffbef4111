"""The preset-choice rule is decided once (``evidence.decide``) and worded twice: the card's technical reason
(``evidence.why_text``) and the plain line (``recommendation``). On many random development records both must
say the same thing: which preset, whether it met the bar, whether the fallback on "no preset conserves" was
taken, and which presets were left out for not conserving."""
from __future__ import annotations

import json

import numpy as np
import pytest

from NeuroRelevanceLib.models import read_card
from NeuroRelevanceLib.pretrained import model_card_path
from NeuroRelevanceLib.pretrained.evidence import FOLD, MAX_CONSERVATION_ERROR, choose_recorded, decide_recorded
from NeuroRelevanceLib.recommendation import plain_text

PRESETS = ("epsilon-gamma-box", "deep-taylor", "alpha2-beta1", "graph-alpha1-beta0")   # none inside another


def _development(rng: np.random.Generator) -> dict:
    chance = 0.05
    methods = {f"lrp:{p}": {"mass_accuracy": round(float(rng.choice([2.0, 4.0, 6.0, 7.0, 9.0])) * chance
                                                   + float(rng.uniform(0, 0.01)), 4),
                            "conservation_error": float(rng.choice([0.1, 0.4, 0.8, 2.0, 5.0])),
                            "min_subject_fold": 3.0}
               for p in PRESETS}
    return {"n_subjects": 10, "cohort_seed": 0, "chance": {"mass_accuracy": chance}, "methods": methods}


@pytest.mark.parametrize("seed", range(40))
def test_reason_and_plain_line_word_the_same_decision(tmp_path, seed):
    dev = _development(np.random.default_rng(seed))
    rows = {m[4:]: (v["mass_accuracy"], v["conservation_error"]) for m, v in dev["methods"].items()}
    # independent oracle: the rule written out here
    conserving = {p for p, (_, c) in rows.items() if c <= MAX_CONSERVATION_ERROR} or set(rows)
    good = {p for p in conserving if rows[p][0] >= FOLD * 0.05}
    expected = (min(good, key=lambda p: (rows[p][1], -rows[p][0])) if good
                else max(conserving, key=lambda p: rows[p][0]))
    left_out = sorted(p for p in rows if p not in conserving and rows[p][0] >= FOLD * 0.05)

    choice = decide_recorded(dev)
    preset, why = choose_recorded(dev)
    assert choice.preset == preset == expected
    assert sorted(choice.left_out) == left_out and choice.met_bar == good

    raw = json.loads(model_card_path("ad_cnn").read_text())
    raw["recommended_preset"] = preset
    raw["evidence"] = {"development": dev, "held_out": dict(dev, cohort_seed=2)}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(raw))
    line = plain_text(read_card(path))

    met = "it conserves best" in why
    assert met == bool(good) == ("met the bar there" in line and "no preset" not in line.split("chosen on")[-1]), \
        (why, line)
    fallback = "no preset that conserves" in why
    assert fallback == ("no preset whose explanation adds up" in line), (why, line)
    named_line = (line.split(" met the bar too")[0].rsplit("; ", 1)[-1].split(" and ")
                  if " met the bar too" in line else [])
    assert sorted(named_line) == left_out, line
    for p in PRESETS:
        named_reason = f"{p} (" in why and "does not conserve" in why.split(f"{p} (")[1].split(";")[0]
        assert named_reason == (p in left_out), (p, why)
