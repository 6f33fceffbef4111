"""The model card's intended use and limits travel with every result, and a card without them warns."""
import json
import warnings

import pytest

from NeuroRelevanceLib.models import card_from_dict, load_model, read_card
from NeuroRelevanceLib.pretrained import MODELS, model_card_path

MINIMAL = {"name": "tiny", "architecture": {"class": "NeuroRelevanceLib.nets.DeepTaylorCNN", "kwargs": {}},
           "weights": "w.safetensors"}


def test_every_bundled_card_states_its_intended_use_and_limits():
    for name in MODELS:
        card = read_card(model_card_path(name))
        assert card.intended_use and "synthetic" in card.intended_use.lower(), name
        assert "not for clinical use" in card.limitations.lower(), name
        assert card.use_warning == "", name
        assert card.to_json()["intended_use"] == card.intended_use


def test_a_card_without_intended_use_gets_a_visible_warning(tmp_path):
    card = card_from_dict(dict(MINIMAL))
    assert "intended use" in card.use_warning.lower() and "limitations" in card.use_warning.lower()
    assert card_from_dict({**MINIMAL, "intended_use": "research"}).use_warning  # limits still missing
    assert not card_from_dict({**MINIMAL, "intended_use": "research", "limitations": "none known"}).use_warning
    with pytest.raises(Exception, match="intended_use"):
        card_from_dict({**MINIMAL, "intended_use": 3})


def test_loading_a_card_without_them_warns_and_says_so_in_the_summary(tmp_path):
    from NeuroRelevanceLib.models import save_weights
    from NeuroRelevanceLib.nets import build, spec

    net = build("DeepTaylorCNN", seed=0, in_channels=1, n_outputs=2, channels=(2,))
    save_weights(net, tmp_path / "w.safetensors")
    (tmp_path / "card.json").write_text(json.dumps({"name": "bare", "architecture": spec(net),
                                                    "weights": "w.safetensors"}))
    with pytest.warns(UserWarning, match="intended use"):
        loaded = load_model(tmp_path / "card.json", device="cpu")
    assert "intended use" in loaded.summary().lower()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete card loads quietly
        load_model(model_card_path("ad_cnn"), device="cpu")


def test_panel_text_shows_use_and_limits_or_the_warning():
    from NeuroRelevanceLib import panel

    text = panel.intended_use_text(read_card(model_card_path("ad_cnn")))
    assert "not for clinical use" in text.lower() and "synthetic" in text.lower()
    bare = panel.intended_use_text(card_from_dict(dict(MINIMAL)))
    assert bare.startswith("⚠") and "intended use" in bare.lower()
