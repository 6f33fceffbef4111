"""Trial 7, F6: a model or card the network rejects is refused with the real cause and the fix.

- a card whose channels or shape the network rejects names the network's own error line (not TorchScript's
  "The following operation failed in the TorchScript interpreter.") and the card field to fix;
- a model returning a dict or tuple is told to return one tensor (a wrapper), as a user error, not as an
  unexpected error and not as a graph mismatch about Python branches;
- a model traced in training mode (dropout baked in) is told to call model.eval() before torch.jit.trace.
Real TorchScript files, real cards, the real command line; sizes tiny.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.errors import InputError, cause_line
from NeuroRelevanceLib.models import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHAPE = [8, 8, 8]


class Skip(nn.Module):
    """Conv, strided conv, upsampling and concatenation: a shape that does not halve evenly breaks the cat."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.d = nn.Conv3d(2, 2, 3, stride=2, padding=1)
        self.h = nn.Linear(4, 2)

    def forward(self, x):
        a = F.relu(self.c(x))
        b = F.interpolate(F.relu(self.d(a)), scale_factor=2.0)
        return self.h(torch.cat([a, b], 1).mean((2, 3, 4)))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.h = nn.Linear(2, 2)

    def forward(self, x):
        f = F.relu(self.c(x)).mean((2, 3, 4))
        return self.h(f), f


class Named(Pair):
    def forward(self, x):
        f = F.relu(self.c(x)).mean((2, 3, 4))
        return {"logits": self.h(f), "features": f}


class Dropping(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(1, 8, 3, padding=1)
        self.drop = nn.Dropout3d(0.5)
        self.drop2 = nn.Dropout(0.5)
        self.h = nn.Linear(8, 2)

    def forward(self, x):
        return self.h(self.drop2(self.drop(F.relu(self.c(x))).mean((2, 3, 4))))


def _scripted(model: nn.Module, how: str):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(model) if how == "script" else \
            torch.jit.trace(model, torch.rand(1, 1, *SHAPE), check_trace=False)


def _card(folder: Path, module, channels=("T1",), shape=SHAPE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(module, str(folder / "net.pt"))
    card = {"name": "t", "weights": "net.pt",
            "input": {"channels": list(channels), "shape": list(shape), "spacing": [4.0] * 3, "orientation": "RAS",
                      "normalization": {"type": "percentile", "low": 1, "high": 99}},
            "output": {"type": "classification", "classes": ["a", "b"]},
            "intended_use": "tests", "limitations": "tests"}
    (folder / "card.json").write_text(json.dumps(card))
    return folder / "card.json"


def _refused(path: Path) -> str:
    with pytest.raises(InputError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_model(path, device="cpu")
    return str(info.value)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_card_channels_the_network_rejects_name_the_cause_and_input_channels(tmp_path, how):
    message = _refused(_card(tmp_path, _scripted(Skip().eval(), how), channels=("T1", "FLAIR")))
    assert "TorchScript interpreter" not in message, message
    assert "to have 1 channels, but got 2 channels" in message, message
    assert "input.channels" in message and "1 channel" in message, message


@pytest.mark.parametrize("how", ["script", "trace"])
def test_card_shape_the_network_rejects_names_the_cause_and_input_shape(tmp_path, how):
    message = _refused(_card(tmp_path, _scripted(Skip().eval(), how), shape=[7, 8, 8]))
    assert "TorchScript interpreter" not in message, message
    assert "Sizes of tensors must match" in message, message
    assert "input.shape" in message, message


@pytest.mark.parametrize("model, form", [(Pair, "a tuple of 2 values"), (Named, "a dict (keys 'logits'")])
def test_card_network_returning_several_outputs_is_told_to_wrap(tmp_path, model, form):
    message = _refused(_card(tmp_path, _scripted(model().eval(), "script")))
    assert form in message and "not one tensor" in message and "Wrap" in message, message
    assert "Python branches" not in message and ".pt2" not in message, message


@pytest.mark.parametrize("model, form", [(Pair, "tuple"), (Named, "dict")])
@pytest.mark.parametrize("how", ["module", "script"])
@pytest.mark.parametrize("method", ["lrp", "gradient"])
def test_explain_on_a_model_returning_several_outputs_is_a_user_error(model, form, how, method):
    net = model().eval()
    if how == "script":
        net = _scripted(net, "script")
    with pytest.raises(InputError) as info:
        explain(net, torch.rand(1, 1, *SHAPE), method)
    message = str(info.value)
    assert "one tensor" in message and "rap" in message, message       # "wrap" / "Wrap"
    assert "Python branches" not in message, message


def test_explain_through_the_torchscript_interpreter_names_the_cause():
    net = _scripted(Skip().eval(), "script")
    for method in ("lrp", "gradient"):
        with pytest.raises(InputError) as info:
            explain(net, torch.rand(1, 2, *SHAPE), method)
        assert "to have 1 channels, but got 2 channels" in str(info.value), str(info.value)


def test_cause_line_reads_the_torchscript_traceback():
    net = _scripted(Skip().eval(), "trace")
    with pytest.raises(RuntimeError) as info:
        net(torch.rand(1, 1, 7, 8, 8))
    assert str(info.value).startswith("The following operation failed in the TorchScript interpreter.")
    assert cause_line(info.value).startswith("Sizes of tensors must match")
    assert cause_line(ValueError("first\nsecond")) == "first"


def test_a_model_traced_in_training_mode_is_told_to_call_eval_first():
    net = Dropping().train()
    traced = _scripted(net, "trace")
    with pytest.raises(InputError) as info:
        explain(traced, torch.rand(1, 1, *SHAPE))
    message = str(info.value)
    assert "model.eval()" in message and "torch.jit.trace" in message, message
    net.eval()
    explain(_scripted(net, "trace"), torch.rand(1, 1, *SHAPE))     # the fix works


def test_the_command_line_reports_these_as_user_errors(tmp_path, capsys, batch_inputs):
    """No 'unexpected', exit code 2, one line naming the fix, for each bad model."""
    from NeuroRelevanceLib.cli import main

    _, table = batch_inputs
    scan = str(next(Path(table).parent.rglob("*.nii.gz")))
    cases = {"tuple": _card(tmp_path / "tuple", _scripted(Pair().eval(), "script")),
             "dict": _card(tmp_path / "dict", _scripted(Named().eval(), "script")),
             "channels": _card(tmp_path / "channels", _scripted(Skip().eval(), "script"), channels=("T1", "T2"))}
    for name, path in cases.items():
        inputs = [f"{scan},{scan}"] if name == "channels" else [scan]
        code = main(["explain", *inputs, "--model", str(path), "--output", str(tmp_path / f"out-{name}"),
                     "--atlas", "none", "--no-png", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert "unexpected" not in err and "TorchScript interpreter" not in err, (name, err)
        assert ("not one tensor" in err) if name != "channels" else ("input.channels" in err), (name, err)
        assert not (tmp_path / f"out-{name}").exists()
