"""A card's weights stay in the card's folder unless the card is trusted, and the refusal does not
tell whether the file it names exists."""
import json
import os
import shutil

import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model, save_weights
from NeuroRelevanceLib.nets import build, spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def layout(tmp_path):
    """cards/ holds the card; outside/ holds real weights the card must not reach."""
    cards, outside = tmp_path / "cards", tmp_path / "outside"
    cards.mkdir()
    outside.mkdir()
    net = build("DeepTaylorCNN", seed=2, in_channels=1, n_outputs=2, channels=(4, 8))
    save_weights(net, outside / "w.safetensors")
    return cards, outside, net


def _write_card(folder, net, weights: str):
    card = {"name": "c", "architecture": spec(net), "weights": weights,
            "input": {"channels": ["T1"], "shape": [16, 16, 16]},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "tests only"}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def _escapes(cards, outside):
    """weights entries that leave ``cards/`` (each pointing at an existing and a missing file)."""
    (cards / "link.safetensors").symlink_to(outside / "w.safetensors")
    (cards / "dangling.safetensors").symlink_to(outside / "missing.safetensors")
    (cards / "linkdir").symlink_to(outside, target_is_directory=True)
    return {
        "dotdot": ("../outside/w.safetensors", "../outside/missing.safetensors"),
        "inner dotdot": ("sub/../../outside/w.safetensors", "sub/../../outside/missing.safetensors"),
        "absolute": (str(outside / "w.safetensors"), str(outside / "missing.safetensors")),
        "symlink file": ("link.safetensors", "dangling.safetensors"),
        "symlinked folder": ("linkdir/w.safetensors", "linkdir/missing.safetensors"),
    }


def test_weights_outside_the_folder_are_refused_with_the_same_message_either_way(layout):
    cards, outside, net = layout
    for how, (existing, missing) in _escapes(cards, outside).items():
        messages = []
        for named in (existing, missing):
            with pytest.raises(InputError) as info:
                load_model(_write_card(cards, net, named), device="cpu")
            messages.append(str(info.value).replace(named, "<named>"))
        assert "outside the card's own folder" in messages[0], how
        assert messages[0] == messages[1], f"{how}: the message tells whether the target exists"
        assert "exist" not in messages[0] and str(outside) not in messages[0].replace("<named>", "")


def test_etc_passwd_is_not_opened(layout):
    cards, _, net = layout
    for named in ("../../../../../../etc/passwd", "/etc/passwd", "/etc/no-such-file"):
        with pytest.raises(InputError, match="outside the card's own folder"):
            load_model(_write_card(cards, net, named), device="cpu")


def test_trusted_cards_may_name_weights_elsewhere(layout):
    cards, outside, net = layout
    loaded = load_model(_write_card(cards, net, str(outside / "w.safetensors")), trusted=True,
                        device="cpu")
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), net(x))


def test_weights_below_the_folder_and_inner_links_are_fine(layout):
    cards, outside, net = layout
    (cards / "sub").mkdir()
    shutil.copy(outside / "w.safetensors", cards / "sub" / "w.SAFETENSORS")
    (cards / "inner.safetensors").symlink_to(cards / "sub" / "w.SAFETENSORS")
    for named in ("sub/w.SAFETENSORS", "inner.safetensors", "./sub/w.SAFETENSORS"):
        assert load_model(_write_card(cards, net, named), device="cpu").format == "card"


def test_missing_weights_inside_the_folder_are_named(layout):
    cards, _, net = layout
    with pytest.raises(InputError, match="does not exist"):
        load_model(_write_card(cards, net, "nothing.safetensors"), device="cpu")


def test_odd_weights_names_get_one_clear_error(layout):
    cards, _, net = layout
    for named in (".", "sub/", "a\x00b.safetensors", "~/w.safetensors"):
        with pytest.raises(InputError):
            load_model(_write_card(cards, net, named), device="cpu")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_as_weights_is_not_read(layout):
    cards, _, net = layout
    os.mkfifo(cards / "fifo.safetensors")
    with pytest.raises(InputError):
        load_model(_write_card(cards, net, "fifo.safetensors"), device="cpu")
