"""A model card whose weights file is a whole pickled model (``torch.save(model)``), not a state dict.

Such a card names no architecture because the file holds one; asking to "add architecture" sent users the
wrong way (trial finding F10). The refusal says what the file is, that it is loaded only when trusted, and
how to save it without pickled code. It learns what the file is from the pickle's opcodes (the names it
would import), never by unpickling it: ``_Recorded.__setstate__`` records every unpickling.
"""
from __future__ import annotations

import json
import pickle

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.models.model_files import UntrustedFileError
from security_payloads import Exec

#: one entry per time a _Recorded network was unpickled (the oracle for "never unpickled")
UNPICKLED: list[str] = []


class _Recorded(nn.Module):
    """A small real network that notes each time pickle rebuilds it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3)
        self.head = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3, 4)))

    def __setstate__(self, state) -> None:
        UNPICKLED.append("unpickled")
        super().__setstate__(state)


SAVES = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


def _card(folder, weights: str, **extra) -> object:
    card = {"name": "pickled", "weights": weights,
            "input": {"channels": ["T1"], "shape": [8, 8, 8], "spacing": [2.0, 2.0, 2.0],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "untrained", **extra}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def _network() -> _Recorded:
    torch.manual_seed(0)
    return _Recorded().eval()


@pytest.mark.parametrize("layout", list(SAVES))
def test_a_card_naming_a_pickled_model_says_so_and_loads_it_only_when_trusted(tmp_path, layout):
    network = _network()
    torch.save(network, tmp_path / "model.pt", **SAVES[layout])
    card = _card(tmp_path, "model.pt")
    UNPICKLED.clear()
    with pytest.raises(UntrustedFileError) as info:
        load_model(card, device="cpu")
    assert UNPICKLED == []                                       # found out without unpickling
    message = str(info.value)
    assert "model.pt is a pickled whole model" in message and "not a state dict" in message, message
    assert "_Recorded" in message, message                       # the class it would import
    assert "trusted=True" in message and "'I trust this file'" in message, message
    assert "state_dict()" in message and "torch.jit.save" in message, message
    assert 'add "architecture" to the card' not in message, message
    loaded = load_model(card, trusted=True, device="cpu")         # trust: torch reads the whole model
    assert UNPICKLED and loaded.card is not None and loaded.format == "pickle"
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), network(x))


@pytest.mark.parametrize("layout", list(SAVES))
def test_a_card_naming_a_state_dict_still_asks_for_the_architecture(tmp_path, layout):
    torch.save(_network().state_dict(), tmp_path / "weights.pt", **SAVES[layout])
    with pytest.raises(InputError) as info:
        load_model(_card(tmp_path, "weights.pt"), device="cpu")
    assert not isinstance(info.value, UntrustedFileError)
    assert 'add "architecture" to the card' in str(info.value) and "pickled" not in str(info.value)
    with pytest.raises(InputError, match='add "architecture" to the card'):   # trust does not change it
        load_model(_card(tmp_path, "weights.pt"), trusted=True, device="cpu")


@pytest.mark.parametrize("kind", ["plain pickle", "torch.save of a dict"])
def test_any_pickled_object_as_weights_is_named_and_never_run(tmp_path, kind):
    marker = tmp_path / "fired"
    payload = Exec(f"open({str(marker)!r}, 'w').close()")
    if kind == "plain pickle":
        (tmp_path / "w.pt").write_bytes(pickle.dumps(payload, protocol=4))
    else:
        torch.save({"model": payload}, tmp_path / "w.pt")
    with pytest.raises(UntrustedFileError) as info:
        load_model(_card(tmp_path, "w.pt"), device="cpu")
    assert not marker.exists()
    message = str(info.value)
    assert "w.pt is a pickled Python object" in message and "builtins.exec" in message, message
    assert 'add "architecture" to the card' not in message, message


def test_the_command_line_gives_its_own_advice(tmp_path, capsys):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.models.model_files import CLI_TRUST_HINT

    files = make_inputs(tmp_path / "in")
    torch.save(_network(), tmp_path / "model.pt")
    UNPICKLED.clear()
    code = main(["compare", str(files.scans[0]), "--model", str(_card(tmp_path, "model.pt")), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and UNPICKLED == [], err
    assert "model.pt is a pickled whole model" in err and err.endswith(CLI_TRUST_HINT), err
    assert "trusted=True ('I trust" not in err, err
