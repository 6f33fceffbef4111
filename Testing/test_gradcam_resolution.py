"""Trial 7, F8: Grad-CAM never returns a constant map from a one-voxel layer without saying so.

Rule (docs/methods.md): a layer whose output has a single voxel (every spatial axis below 2) cannot localise —
upsampled, its map is one value everywhere. The default layer passes over such convolutions (the last convolution
block with more than one voxel); a layer named explicitly is refused with its size and the default as the fix, and
following that fix verbatim gives a map that varies. Grad-CAM, Grad-CAM++ and Guided Grad-CAM alike.
"""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
METHODS = ["gradcam", "gradcam++", "guided_gradcam"]


class Funnel(nn.Module):
    """8³ → 4³ → 2³ → 1³ by strided 3×3×3 convolutions, then a linear head: the last block has one voxel."""

    def __init__(self):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv3d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv3d(4, 4, 3, stride=2, padding=1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv3d(4, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.b3(self.b2(self.b1(x))).flatten(1))


def _x(size=8):
    return torch.rand(1, 1, size, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _model():
    torch.manual_seed(0)
    return Funnel().double().eval()


def _options(method: str) -> dict:
    """Unrectified CAMs (a random net's rectified CAM may be zero), Grad-CAM++ weights for Guided Grad-CAM."""
    return {"plus": True} if method == "guided_gradcam" else {"relu": False}


def _varies(e) -> bool:
    return torch.unique(e.relevance).numel() > 1


@pytest.mark.parametrize("method", METHODS)
def test_default_layer_has_more_than_one_voxel(method):
    e = explain(_model(), _x(), method, target=0, **_options(method))
    assert e.parameters["layer"] == "b2"
    assert e.parameters["layer_shape"][1:] == (2, 2, 2)
    assert _varies(e) or method == "guided_gradcam"     # guided backprop of a tiny random net may be all zero


@pytest.mark.parametrize("method", METHODS)
def test_a_one_voxel_layer_is_refused_with_the_fix_that_works(method):
    with pytest.raises(InputError) as info:
        explain(_model(), _x(), method, target=0, layer="b3")
    message = str(info.value)
    assert "'b3'" in message and "single voxel (1×1×1)" in message and "8×8×8" in message, message
    fix = re.search(r"layer='([^']+)'", message)
    assert fix is not None, message
    e = explain(_model(), _x(), method, target=0, layer=fix.group(1), **_options(method))
    assert _varies(e) or method == "guided_gradcam"


def test_an_input_too_small_for_any_layer_is_refused():
    with pytest.raises(InputError, match="single voxel for an input of 1×1×1"):
        explain(_model(), _x(1), "gradcam")


def test_monai_densenet121_at_32_cubed_gives_a_map_that_varies():
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    model = nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=2,
                             bn_size=2).eval()
    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    for method in ("gradcam", "gradcam++"):
        e = explain(model, x, method, relu=False)
        assert e.parameters["layer_shape"][1:] == (2, 2, 2), e.parameters
        assert _varies(e), (method, e.parameters)
