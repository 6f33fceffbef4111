"""Whose failure is it? The card check runs the network on a test input of the card's shape; a refusal names the
card's input as the cause only for torch's errors about channels or sizes, and calls any other error the network's
own (trial finding: bare "input" / "size" are in nearly every torch error, so the second branch never fired).

Real small networks raise real torch errors; they are loaded through a trusted card (this module is importable).
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model

CARD_INPUT = "Fix the card"
OWN = "an error of the network itself, not of the card's input"


class TwoChannels(nn.Module):
    """Trained on two channels; the card lists one."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3, 4))


class FixedSide(nn.Module):
    """A dense head sized for another input.shape (mat1 and mat2 shapes cannot be multiplied)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv3d(1, 2, 3), nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


class SkipJoin(nn.Module):
    """Joins a pooled branch to the full one: sides that do not halve evenly do not match."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.up = nn.Conv3d(1, 2, 3, padding=1), nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return (y + self.up(nn.functional.max_pool3d(y, 2))).mean((2, 3, 4))


class DoubleWeights(nn.Module):
    """Weights in float64: torch refuses the float32 input ("Input type (float) and bias type (double)...")."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3, 4))


class FloatIndices(nn.Module):
    """A bug in forward: an embedding looked up with float indices."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x.flatten(1)[:, :1]).flatten(1)


def _card(folder, cls: type, shape: list[int]) -> object:
    torch.save(cls().state_dict(), folder / "weights.pt")
    card = {"name": cls.__name__, "weights": "weights.pt",
            "architecture": {"class": f"{__name__}.{cls.__name__}", "kwargs": {}},
            "input": {"channels": ["T1"], "shape": shape, "spacing": [2.0] * 3, "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "untrained"}
    (folder / "card.json").write_text(json.dumps(card))
    return folder / "card.json"


@pytest.mark.parametrize(("cls", "shape", "cause"), [
    (TwoChannels, [8, 8, 8], CARD_INPUT), (FixedSide, [8, 8, 8], CARD_INPUT), (SkipJoin, [7, 8, 8], CARD_INPUT),
    (DoubleWeights, [8, 8, 8], OWN), (FloatIndices, [8, 8, 8], OWN)])
def test_the_refusal_names_the_card_only_for_channel_and_size_errors(tmp_path, one_torch_thread, cls, shape, cause):
    x = torch.zeros(1, 1, *shape)
    with pytest.raises((RuntimeError, ValueError)):  # the oracle: torch itself refuses this input
        cls()(x)
    with pytest.raises(InputError) as info:
        load_model(_card(tmp_path, cls, shape), trusted=True, device="cpu")
    message = str(info.value)
    assert cause in message, message
    assert (OWN if cause == CARD_INPUT else CARD_INPUT) not in message, message

