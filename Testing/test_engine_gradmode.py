"""The caller's grad mode never changes the map: identical relevance inside torch.no_grad() and
torch.inference_mode() as outside, for every preset and graph format, and the caller's mode is left as it was.
(On main, LRP returned an all-zero map inside inference_mode with no error.)"""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib.engine import PRESETS, explain
from test_engine_nets import GraphNet, SegNet, make

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


@pytest.fixture(scope="module")
def formats():
    model = make(GraphNet(bias=True, bn=True), seed=11)
    x = torch.randn(2, 2, 8, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return x, {"module": model, "exported": torch.export.export(model, (x,)), "scripted": torch.jit.script(model)}


@pytest.mark.parametrize("fmt", ["module", "exported", "scripted"])
def test_same_map_under_every_grad_mode(formats, fmt):
    x, models = formats
    model = models[fmt]
    for preset in PRESETS:
        ref = explain(model, x, preset=preset, dtype=torch.float64)
        assert ref.relevance.abs().sum() > 0
        with torch.no_grad():
            a = explain(model, x, preset=preset, dtype=torch.float64)
            assert not torch.is_grad_enabled()
        with torch.inference_mode():
            b = explain(model, x, preset=preset, dtype=torch.float64)
            assert torch.is_inference_mode_enabled()
        for e in (a, b):
            assert torch.equal(e.relevance, ref.relevance), (fmt, preset)
            assert torch.equal(e.output, ref.output)


def test_inputs_and_models_made_in_inference_mode():
    """Inference tensors (the input, the weights) are copied, never fed to autograd."""
    with torch.inference_mode():
        model = make(SegNet(), seed=2)
        x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
        mask = torch.ones(8, 8, 8)
    ref_model = make(SegNet(), seed=2)
    ref = explain(ref_model, x.clone(), mask=mask.clone(), dtype=torch.float64)
    e = explain(model, x, mask=mask, dtype=torch.float64)
    assert torch.equal(e.relevance, ref.relevance) and e.relevance.abs().sum() > 0


def test_grad_mode_left_as_found():
    model = make(SegNet(), seed=3)
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        explain(model, x, mask=torch.ones(8, 8, 8), dtype=torch.float64)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
