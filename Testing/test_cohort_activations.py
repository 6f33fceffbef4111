"""Streamed activation capture on a small real 3D CNN: batches equal a single pass, the hooked
layer equals a manual forward, default layer, TorchScript chains, model left unchanged, errors."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.cohort import collect_activations
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.explanation.layers import last_feature_map


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.MaxPool3d(2))
        self.block = nn.Sequential(nn.Conv3d(4, 6, 3, padding=1, stride=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(self.pool(self.block(self.stem(x))).flatten(1))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = SmallNet()
    with torch.no_grad():  # non-trivial running statistics
        m.stem[1].running_mean.uniform_(-0.2, 0.2)
        m.stem[1].running_var.uniform_(0.5, 2.0)
    return m


@pytest.fixture(scope="module")
def volumes():
    rng = np.random.default_rng(0)
    return [rng.random((16, 12, 8)).astype(np.float32) for _ in range(7)]


def test_streaming_equals_single_pass_and_manual_forward(net, volumes):
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    streamed = collect_activations(net, volumes, batch_size=3)
    single = collect_activations(net, volumes, batch_size=len(volumes))
    assert net.training  # flag restored
    for k, v in net.state_dict().items():  # nothing changed (BatchNorm stats included)
        assert torch.equal(v, state[k])
    assert streamed.layer == "block" and streamed.layer_shape == (4, 3, 2)
    assert streamed.tensor.shape == (7, 6, 24) and streamed.input_shape == (16, 12, 8)
    torch.testing.assert_close(streamed.tensor, single.tensor, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(streamed.outputs, single.outputs, rtol=1e-5, atol=1e-6)
    net.eval()
    with torch.no_grad():
        x = torch.stack([torch.as_tensor(v)[None] for v in volumes])
        ref = net.block(net.stem(x)).reshape(7, 6, -1)
        out = net(x)
    net.train()
    torch.testing.assert_close(streamed.tensor, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(streamed.outputs, out, rtol=1e-5, atol=1e-6)


def test_named_layer_and_default_layer(net, volumes):
    acts = collect_activations(net, volumes[:2], layer="stem.2", batch_size=1)
    assert acts.tensor.shape == (2, 4, 16 * 12 * 8) and acts.layer_shape == (16, 12, 8)
    assert last_feature_map(net, torch.as_tensor(volumes[0])[None, None]) == "block"


def test_torchscript_chain_matches_module(volumes):
    torch.manual_seed(1)
    chain = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv3d(3, 5, 3, stride=2, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(5, 1)).eval()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(chain), buf)
    buf.seek(0)
    scripted = torch.jit.load(buf)
    a_mod = collect_activations(chain, volumes, layer="3", batch_size=2)
    a_ts = collect_activations(scripted, volumes, batch_size=2)
    assert a_ts.layer == "3"
    torch.testing.assert_close(a_ts.tensor, a_mod.tensor, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="top-level child"):
        collect_activations(scripted, volumes, layer="nope")


def test_bad_inputs(net, volumes):
    nan = [v.copy() for v in volumes[:3]]
    nan[2][1, 1, 1] = np.nan
    with pytest.raises(InputError, match="subject 2 .*NaN"):
        collect_activations(net, nan, batch_size=2)
    mixed = volumes[:2] + [np.zeros((16, 12, 9), np.float32)]
    with pytest.raises(InputError, match="resample all volumes onto one grid"):
        collect_activations(net, mixed, batch_size=2)
    with pytest.raises(InputError, match="no module named"):
        collect_activations(net, volumes, layer="does.not.exist")
    with pytest.raises(InputError, match="no subjects"):
        collect_activations(net, [])
