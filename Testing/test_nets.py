"""Tests for NeuroRelevanceLib.nets: shapes, parameter counts (closed forms), seeds, config round trips, errors."""
from __future__ import annotations

import json
import operator

import pytest
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib import nets
from NeuroRelevanceLib.nets import DeepTaylorCNN, PreActResNet3d, UNet3d, build, parameter_count


def _conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return k ** 3 * c_in * c_out + (c_out if bias else 0)


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("kwargs, x_shape, out_shape", [
    ({}, (2, 1, 32, 32, 32), (2, 3)),
    ({"in_channels": 2, "n_outputs": 2, "channels": (4, 8), "hidden": 5}, (3, 2, 9, 12, 10), (3, 2)),
    ({"bias": False, "batchnorm": False, "pool": "max"}, (1, 1, 16, 20, 16), (1, 3)),
])
def test_deep_taylor_cnn_shapes(kwargs, x_shape, out_shape):
    model = build("DeepTaylorCNN", seed=0, **kwargs)
    assert model(torch.randn(x_shape)).shape == out_shape


@pytest.mark.parametrize("kwargs, x_shape, out_shape", [
    ({"widths": (4, 8), "units": (1, 2)}, (2, 1, 12, 14, 12), (2, 1)),
    ({"widths": (4, 8, 8), "units": (2, 1, 1), "task": "classification"}, (1, 1, 16, 16, 16), (1, 2)),
    ({"widths": (4,), "units": (2,), "n_outputs": 5, "in_channels": 3, "stem_stride": 2}, (2, 3, 9, 9, 9), (2, 5)),
])
def test_preact_resnet_shapes(kwargs, x_shape, out_shape):
    model = build("PreActResNet3d", seed=0, **kwargs)
    assert model(torch.randn(x_shape)).shape == out_shape


@pytest.mark.parametrize("kwargs, x_shape", [
    ({"features": (4, 8, 16)}, (2, 6, 8, 12, 16)),
    ({"in_channels": 2, "n_classes": 3, "features": (4, 8), "norm": "instance", "pool": "avg"}, (1, 2, 6, 6, 6)),
    ({"features": (4, 8, 8), "norm": "batch", "pool_size": (1, 2, 2)}, (1, 6, 19, 12, 8)),
])
def test_unet_shapes(kwargs, x_shape):
    model = build("UNet3d", seed=0, **kwargs)
    out = model(torch.randn(x_shape))
    n_classes = kwargs.get("n_classes", 2)
    assert out.shape == (x_shape[0], n_classes, *x_shape[2:])


# ---------------------------------------------------------------- parameter counts against closed forms
def test_deep_taylor_cnn_parameter_count_matches_seed_000_feature_extractor():
    model = DeepTaylorCNN()
    chans, c_in, expected = (8, 16, 32, 64), 1, 0
    for c in chans:
        expected += _conv(c_in, c) + _conv(c, c) + 2 * c  # two convs + BN gamma/beta
        c_in = c
    expected += 64 * 3 + 3
    assert parameter_count(model) == expected
    # seed 000: the four BatchNorm layers hold 240 non-trainable statistics (running mean + variance)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert stats == 240


def test_preact_resnet_seed_003_shape_and_parameter_count():
    model = PreActResNet3d()
    widths, units = (8, 16, 32, 64, 128), (3, 4, 6, 4, 3)
    expected = _conv(1, 8)
    c_in = 8
    for w, n in zip(widths, units, strict=True):
        for _ in range(n):
            expected += 2 * c_in + _conv(c_in, w) + 2 * w + _conv(w, w)
            if c_in != w:
                expected += _conv(c_in, w, k=1)
            c_in = w
    expected += 2 * 128 + 128 + 1
    assert parameter_count(model) == expected
    assert 3.6e6 < expected < 3.8e6  # seed 003 / issue 3: about 3.7 M parameters
    n_units = sum(1 for m in model.modules() if isinstance(m, nets.PreActUnit))
    assert n_units == 20
    strided = [m.conv1.stride for m in model.modules() if isinstance(m, nets.PreActUnit) and m.shortcut is not None]
    assert strided == [(2, 2, 2)] * 4


def test_unet_parameter_count():
    feats, c_in, n_classes = (16, 32, 64, 128), 6, 2
    model = UNet3d(in_channels=c_in, n_classes=n_classes, features=feats, norm="batch")
    expected, c = 0, c_in
    for f in feats:
        expected += _conv(c, f) + _conv(f, f) + 4 * f
        c = f
    for low, high in zip(feats[:-1], feats[1:], strict=True):
        expected += 8 * high * low + low  # ConvTranspose3d kernel 2, stride 2
        expected += _conv(2 * low, low) + _conv(low, low) + 4 * low
    expected += feats[0] * n_classes + n_classes
    assert parameter_count(model) == expected


def test_bias_false_removes_every_conv_and_linear_bias():
    for name in nets.ARCHITECTURES:
        model = build(name, bias=False)
        for m in model.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
                assert m.bias is None, (name, m)


# ---------------------------------------------------------------- seeds and configs
@pytest.mark.parametrize("name", sorted(nets.ARCHITECTURES))
def test_seed_makes_weights_reproducible_without_touching_global_rng(name):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = build(name, seed=7)
    after = torch.rand(3)
    b = build(name, seed=7)
    c = build(name, seed=8)
    assert torch.equal(before, after)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


@pytest.mark.parametrize("name, kwargs", [
    ("DeepTaylorCNN", {"channels": [4, 8, 8], "n_outputs": 2, "bias": False, "hidden": 3}),
    ("PreActResNet3d", {"widths": [4, 8], "units": [1, 1], "task": "classification"}),
    ("UNet3d", {"features": [4, 8], "norm": "instance", "pool_size": [1, 2, 2]}),
])
def test_config_survives_json_and_rebuilds_same_architecture(name, kwargs):
    model = build(name, seed=1, **kwargs)
    assert model.architecture == name
    card = json.loads(json.dumps(nets.spec(model)))
    assert card["class"] == f"NeuroRelevanceLib.nets.{name}"
    rebuilt = nets.from_spec(card, seed=1)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), rebuilt.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert not rebuilt.training


def test_resolve_accepts_names_and_import_paths():
    assert nets.resolve("UNet3d") is UNet3d
    assert nets.resolve("NeuroRelevanceLib.nets.UNet3d") is UNet3d
    assert nets.resolve("NeuroRelevanceLib.nets.preact_resnet.PreActResNet3d") is PreActResNet3d
    assert set(nets.kwargs_of("DeepTaylorCNN")) >= {"in_channels", "n_outputs", "channels", "bias"}


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("call, match", [
    (lambda: build("ResNet50"), "unknown architecture 'ResNet50'"),
    (lambda: build("other.module.UNet3d"), "unknown architecture"),
    (lambda: build("UNet3d", depth=3), r"unknown argument\(s\) \['depth'\]"),
    (lambda: build("DeepTaylorCNN", channels=[]), "channels must be a non-empty list"),
    (lambda: build("DeepTaylorCNN", kernel_size=4), "kernel_size must be odd"),
    (lambda: build("PreActResNet3d", widths=(8, 16), units=(1,)), "units needs 2 entries"),
    (lambda: build("PreActResNet3d", task="segmentation"), "task must be one of"),
    (lambda: build("UNet3d", norm="group"), "norm must be one of"),
    (lambda: build("UNet3d", features=[8]), "at least 2 levels"),
    (lambda: nets.from_spec({"kwargs": {}}), "needs a 'class' key"),
])
def test_bad_arguments_raise_one_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("name, kwargs, shape, match", [
    ("DeepTaylorCNN", {}, (1, 2, 16, 16, 16), "in_channels=1 but the input has 2"),
    ("DeepTaylorCNN", {}, (16, 16, 16), "expects a 5D batch"),
    ("DeepTaylorCNN", {}, (1, 1, 8, 16, 16), r"spatial side >= 16"),
    ("UNet3d", {"features": (4, 8, 16)}, (1, 6, 19, 16, 16), r"divisible by \(4, 4, 4\)"),
])
def test_bad_input_raises_one_clear_error(name, kwargs, shape, match):
    with pytest.raises(ValueError, match=match):
        build(name, **kwargs)(torch.randn(shape))


# ---------------------------------------------------------------- graphs hold the operators the engine must handle
def _targets(model: nn.Module) -> set:
    graph = torch.fx.symbolic_trace(model).graph
    out = set()
    for node in graph.nodes:
        if node.op == "call_module":
            out.add(type(model.get_submodule(node.target)))
        elif node.op in ("call_function", "call_method"):
            out.add(node.target)
    return out


def test_graphs_contain_functional_add_cat_and_transposed_conv():
    res = _targets(build("PreActResNet3d", widths=(4, 8), units=(2, 1)))
    assert operator.add in res and F.relu in res and "mean" in res
    unet = _targets(build("UNet3d", features=(4, 8, 16)))
    assert torch.cat in unet and nn.ConvTranspose3d in unet and F.max_pool3d in unet
    cnn = _targets(build("DeepTaylorCNN"))
    assert {nn.Conv3d, nn.ReLU, nn.BatchNorm3d, nn.AvgPool3d, nn.AdaptiveAvgPool3d, nn.Linear} <= cnn


#: each reference network with an input shape it accepts
NET_INPUTS = [("DeepTaylorCNN", (1, 1, 16, 16, 16)), ("PreActResNet3d", (1, 1, 16, 16, 16)),
              ("UNet3d", (1, 6, 8, 8, 8))]


@pytest.mark.parametrize("name, shape", NET_INPUTS)
def test_traced_graph_computes_the_same_output(name, shape):
    model = build(name, seed=3)
    x = torch.randn(shape)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name, shape", NET_INPUTS)
def test_torchscript_compiles_and_agrees(name, shape):
    model = build(name, seed=4)
    x = torch.randn(shape)
    torch.testing.assert_close(torch.jit.script(model)(x), model(x))
