"""A file's suffix in any letter case means the same format everywhere a model is opened (``.SAFETENSORS`` is
safetensors, never a pickle; ``.JSON`` is a card), and the content, not the name, decides what is read."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model, save_weights
from NeuroRelevanceLib.models.archive import sniff
from NeuroRelevanceLib.models.weights import weights_format
from NeuroRelevanceLib.nets import build, spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPELLINGS = ("safetensors", "SAFETENSORS", "SafeTensors")


@pytest.fixture(scope="module")
def net():
    return build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=2, channels=(2, 4))


def _card(folder, net, weights: str, name: str = "card.json", architecture: bool = True):
    card = {"name": "tiny", "weights": weights,
            "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [2, 2, 2],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "none known"}
    if architecture:
        card["architecture"] = spec(net)
    path = folder / name
    path.write_text(json.dumps(card))
    return path


def _no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("safetensors weights must load without torch.load / pickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.mark.parametrize("suffix", SPELLINGS)
@pytest.mark.parametrize("card_suffix", ("json", "JSON"))
def test_card_weights_in_any_case_load_as_safetensors(tmp_path, net, monkeypatch, suffix, card_suffix):
    weights = tmp_path / f"w.{suffix}"
    save_weights(net, weights)
    assert weights_format(weights) == "safetensors" and sniff(weights.read_bytes()) == "safetensors"
    card = _card(tmp_path, net, weights.name, name=f"card.{card_suffix}")
    _no_unpickling(monkeypatch)
    loaded = load_model(card, device="cpu")
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert loaded.format == "card" and torch.equal(loaded.model(x), net(x))


@pytest.mark.parametrize("suffix", SPELLINGS)
def test_a_safetensors_file_alone_asks_for_a_card_in_any_case(tmp_path, net, suffix):
    weights = tmp_path / f"w.{suffix}"
    save_weights(net, weights)
    for trusted in (False, True):
        with pytest.raises(InputError, match=r"holds only weights \(safetensors\)"):
            load_model(weights, trusted=trusted, device="cpu")
    with pytest.raises(InputError, match='"architecture" is needed'):
        load_model(_card(tmp_path, net, weights.name, architecture=False), device="cpu")


@pytest.mark.parametrize("suffix", SPELLINGS)
def test_a_pickle_named_safetensors_is_still_refused(tmp_path, net, suffix):
    """The name never earns trust: a pickled network under a safetensors name is refused like any pickle."""
    path = tmp_path / f"net.{suffix}"
    torch.save(net, path, _use_new_zipfile_serialization=False)
    with pytest.raises(InputError, match="pickled Python object|trusted"):
        load_model(path, device="cpu")
    with pytest.raises(InputError, match="not a plain state dict"):
        load_model(_card(tmp_path, net, path.name), device="cpu")
