"""A regression card may state its training range (``output.range``); a prediction outside it is flagged
(trial 3: brain_age_resnet predicted 98–107 years for a generator whose ages span 20–90)."""
from __future__ import annotations

import json

import pytest
import torch

from NeuroRelevanceLib.jobs import describe_prediction, prediction_warning
from NeuroRelevanceLib.models import read_card
from NeuroRelevanceLib.models.card import card_from_dict
from NeuroRelevanceLib.pretrained import model_card_path
from NeuroRelevanceLib.pretrained.heldout import card_json


def _card(**output):
    return card_from_dict({"architecture": {"class": "UNet3d"}, "weights": "w.safetensors",
                           "input": {"channels": ["T1"], "shape": [8, 8, 8]},
                           "output": {"type": "regression", "units": "years", **output}})


def test_a_prediction_outside_the_training_range_is_flagged():
    card = _card(range=[20, 90])
    assert card.output.range == (20.0, 90.0)
    inside, outside = torch.tensor([55.0]), torch.tensor([101.3])
    assert prediction_warning(inside, card) == ""
    warning = prediction_warning(outside, card)
    assert "101.30 years" in warning and "20–90" in warning
    assert "outside" in describe_prediction(outside, card) and "outside" not in describe_prediction(inside, card)
    assert prediction_warning(outside, _card()) == ""          # no stated range: nothing to say
    assert card_from_dict(card.to_json()).output.range == (20.0, 90.0)


@pytest.mark.parametrize("bad", [[90, 20], [20], ["a", "b"], 5])
def test_a_bad_range_is_refused(bad):
    from NeuroRelevanceLib.models.schema import check_card as card_problems

    raw = _card().to_json()
    raw["output"]["range"] = bad
    assert any("output.range" in p for p in card_problems(raw))


def test_the_brain_age_card_records_its_generators_age_range():
    from NeuroRelevanceLib.demo.atrophy import AtrophyParams

    card = read_card(model_card_path("brain_age_resnet"))
    assert card.output.range == tuple(AtrophyParams().age_range)
    assert json.dumps(card_json(model_card_path("brain_age_resnet"))["output"]["range"])
