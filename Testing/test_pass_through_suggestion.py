"""Trial 7, F9: the pass_through fix an unsupported operator's error suggests works when followed verbatim.

Before, the error named only the first gate's module; passing it failed at the next gate. Now every suggested
``pass_through={...}`` covers every operator without a rule (all gates), and explaining with it succeeds.
A hand-written network with gates in three modules, and MONAI's AttentionUnet (small), as the user met it.
"""
from __future__ import annotations

import ast
import re

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.engine import UnsupportedOperatorError
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Gate(nn.Module):
    """x · σ(conv(x)): a product of two input-dependent tensors, which has no relevance rule."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, 1, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU(), Gate(2))
        self.deep = nn.Sequential(nn.Conv3d(2, 2, 3, padding=1), nn.ReLU(), nn.Sequential(Gate(2)))
        self.gate = Gate(2)
        self.head = nn.Linear(2, 2)

    def forward(self, x):
        return self.head(self.gate(self.deep(self.stem(x))).mean((2, 3, 4)))


def _suggestions(message: str) -> list[set]:
    found = [ast.literal_eval(s) for s in re.findall(r"pass_through=(\{[^}]*\})", message)]
    assert found, message
    return found


def _follow(model, x, **options) -> list[set]:
    with pytest.raises(UnsupportedOperatorError) as info:
        explain(model, x, **options)
    message = str(info.value)
    assert isinstance(info.value, InputError)
    suggestions = _suggestions(message)
    for names in suggestions:
        e = explain(model, x, pass_through=names, **options)   # verbatim: no further refusal
        assert torch.isfinite(e.relevance).all()
    return suggestions


def test_every_gate_is_named_and_each_suggestion_works():
    torch.manual_seed(0)
    model = Gated().eval()
    x = torch.rand(1, 1, 6, 6, 6, generator=torch.Generator().manual_seed(1))
    suggestions = _follow(model, x)
    modules = [s for s in suggestions if "mul" not in s]
    assert {"stem.2", "deep.2.0", "gate"} in modules, suggestions


def test_monai_attention_unet_suggestion_works_verbatim():
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    model = nets.AttentionUnet(spatial_dims=3, in_channels=1, out_channels=2, channels=(2, 4, 4), strides=(2, 2)).eval()
    x = torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    suggestions = _follow(model, x, target=0)
    assert {"mul"} in suggestions, suggestions
