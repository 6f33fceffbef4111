"""MONAI 1.6.1 networks at test sizes for the engine's third-party coverage matrix (not a test module).

``NETS`` lists, per network, how to build it small (tiny channels and volumes), the input shape, what
to explain (a class of a classifier, or channel 1 summed over the whole volume of a segmenter), the
``pass_through`` it needs, whether ``torch.jit.script`` accepts it, and — for the oracles — how to
build a piecewise-linear variant (BatchNorm instead of Instance/GroupNorm, ReLU-family activations),
on which LRP-0 must equal gradient × input exactly.

Run as a script to print the whole matrix (network × format × preset) with timings, e.g. for VNet,
which is too large (45 M parameters, fixed widths) for the suite: ``python Testing/monai_nets.py
[names…]``; ``--oracles`` prints the measured oracle errors instead (docs/engine.md).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

FORMATS = ("module", "exported", "scripted")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass
class NetSpec:
    """How to build and explain one network."""

    build: Callable[[bool], nn.Module]     # piecewise_linear -> model (train mode, default init)
    shape: tuple                           # input (N, C, D, H, W)
    segmentation: bool                     # explain channel 1 over the whole volume, else class 1
    pass_through: set = field(default_factory=set)
    scriptable: bool = True
    piecewise_linear: bool = True          # the plain build is already piecewise linear
    oracle: bool = True                    # has a piecewise-linear variant for the oracles


def _nets() -> dict[str, NetSpec]:
    from monai.networks import nets

    def densenet(pl: bool) -> nn.Module:
        return nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=4,
                                block_config=(1, 1, 1))

    def resnet(pl: bool) -> nn.Module:
        return nets.ResNet("basic", [1, 1, 1, 1], [4, 4, 4, 4], spatial_dims=3, n_input_channels=1, num_classes=2,
                           conv1_t_size=3, conv1_t_stride=1)

    def segresnet(pl: bool) -> nn.Module:
        norm = "batch" if pl else ("group", {"num_groups": 2})
        return nets.SegResNet(spatial_dims=3, init_filters=4, in_channels=1, out_channels=2, blocks_down=(1, 1),
                              blocks_up=(1,), norm=norm)

    def unet(pl: bool) -> nn.Module:
        return nets.UNet(3, 1, 2, channels=(4, 8), strides=(2,), act="PRELU", norm="BATCH" if pl else "INSTANCE",
                         num_res_units=1)

    def basicunet(pl: bool) -> nn.Module:
        norm = "batch" if pl else ("instance", {"affine": True})
        return nets.BasicUNet(3, 1, 2, features=(4, 4, 4, 4, 4, 4), norm=norm)

    def vnet(pl: bool) -> nn.Module:
        return nets.VNet(3, 1, 2, act="relu" if pl else ("elu", {"inplace": True}), dropout_prob_down=0.0,
                         dropout_prob_up=(0.0, 0.0))

    def highresnet(pl: bool) -> nn.Module:
        layers = ({"name": "conv_0", "n_features": 4, "kernel_size": 3},
                  {"name": "res_1", "n_features": 4, "kernels": (3, 3), "repeat": 1},
                  {"name": "res_2", "n_features": 8, "kernels": (3, 3), "repeat": 1},
                  {"name": "conv_1", "n_features": 8, "kernel_size": 1},
                  {"name": "conv_2", "kernel_size": 1})
        return nets.HighResNet(3, 1, 2, layer_params=layers)

    def attention_unet(pl: bool) -> nn.Module:
        return nets.AttentionUnet(3, 1, 2, channels=(4, 8), strides=(2,))

    def efficientnet(pl: bool) -> nn.Module:
        return nets.EfficientNet(["r1_k3_s11_e1_i8_o8_se0.25", "r1_k3_s22_e2_i8_o8_se0.25"], spatial_dims=3,
                                 in_channels=1, num_classes=2, width_coefficient=0.25, image_size=16)

    return {
        "DenseNet121": NetSpec(densenet, (1, 1, 16, 16, 16), False),
        "ResNet": NetSpec(resnet, (1, 1, 8, 8, 8), False),
        "SegResNet": NetSpec(segresnet, (1, 1, 8, 8, 8), True, piecewise_linear=False),
        "UNet": NetSpec(unet, (1, 1, 8, 8, 8), True, piecewise_linear=False),
        "BasicUNet": NetSpec(basicunet, (1, 1, 32, 16, 16), True, piecewise_linear=False),
        "VNet": NetSpec(vnet, (1, 1, 16, 16, 16), True, piecewise_linear=False),
        "HighResNet": NetSpec(highresnet, (1, 1, 8, 8, 8), True),
        "AttentionUnet": NetSpec(attention_unet, (1, 1, 8, 8, 8), True, {"mul"}, piecewise_linear=False,
                                 oracle=False),
        "EfficientNet": NetSpec(efficientnet, (1, 1, 16, 16, 16), False, {"mul"}, piecewise_linear=False,
                                oracle=False),
    }


NETS = _nets()


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random biases and BatchNorm statistics (like a trained net), eval mode, float64, in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor) and not isinstance(m, _NORMS):
                bias.copy_(0.1 * torch.randn(bias.shape, generator=gen))
            if isinstance(m, _NORMS):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    return model.double().eval()


def make(name: str, piecewise_linear: bool = False, seed: int = 0) -> nn.Module:
    """The network ``name`` with random weights, biases and BatchNorm statistics, eval mode, float64."""
    torch.manual_seed(seed)
    return randomise(NETS[name].build(piecewise_linear), seed)


def bias_free(model: nn.Module) -> nn.Module:
    """A copy without any additive constant: conv/dense biases, BatchNorm means and betas set to zero."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for m in copy_.modules():
            if isinstance(m, _NORMS):
                m.running_mean.zero_()
                m.bias.zero_()
            elif isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
    return copy_


def example(name: str, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(NETS[name].shape, generator=gen, dtype=torch.float64)


def select(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The explained value per sample (class 1, or channel 1 summed over the volume)."""
    if NETS[name].segmentation:
        return lambda out: out[:, 1].flatten(1).sum(1)
    return lambda out: out[:, 1]


def explain_kwargs(name: str) -> dict[str, Any]:
    """``explain`` arguments that explain ``select(name)``."""
    spec = NETS[name]
    kwargs: dict[str, Any] = {"pass_through": spec.pass_through} if spec.pass_through else {}
    if spec.segmentation:
        kwargs.update(target=1, mask=torch.ones(spec.shape[2:]))
    else:
        kwargs.update(target=1)
    return kwargs


def convert(model: nn.Module, x: torch.Tensor, fmt: str) -> Any:
    """The model as ``module``, ``exported`` (torch.export) or ``scripted`` (torch.jit.script)."""
    if fmt == "module":
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "exported":
            return torch.export.export(model, (x,))
        return torch.jit.script(model)


def _print_matrix(names: list[str]) -> None:  # pragma: no cover - documentation helper
    import time

    from NeuroRelevanceLib.engine import PRESETS, explain

    torch.set_num_threads(1)
    for name in names:
        model, x = make(name), example(name)
        for fmt in FORMATS:
            try:
                obj = convert(model, x, fmt)
            except Exception as exc:  # noqa: BLE001
                print(f"| {name} | {fmt} | refused by torch: {type(exc).__name__} |")
                continue
            for preset in PRESETS:
                t0 = time.perf_counter()
                try:
                    e = explain(obj, x, preset=preset, dtype=torch.float32, **explain_kwargs(name))
                    print(f"| {name} | {fmt} | {preset} | runs ({e.graph_source}), conservation error "
                          f"{e.max_conservation_error:.1e}, {time.perf_counter() - t0:.1f} s |")
                except Exception as exc:  # noqa: BLE001
                    print(f"| {name} | {fmt} | {preset} | refused: {type(exc).__name__}: {str(exc)[:120]} |")


def _print_oracles(names: list[str]) -> None:  # pragma: no cover - documentation helper
    from engine_nets_helpers import grad_times_input, own_conservation
    from NeuroRelevanceLib.engine import LRP0, ZPlus, explain

    torch.set_num_threads(1)
    for name in [n for n in names if NETS[n].oracle]:
        model, x = make(name, piecewise_linear=True), example(name)
        expected, _ = grad_times_input(model, x, select(name))
        errors = []
        for fmt in FORMATS if NETS[name].scriptable else FORMATS[:2]:
            e = explain(convert(model, x, fmt), x, preset=None, rules={"*": LRP0()}, dtype=torch.float64,
                        stabilizer=0.0, **explain_kwargs(name))
            errors.append(f"{fmt} {float((e.relevance - expected).abs().max() / expected.abs().max()):.1e}")
        free = bias_free(model)
        cons = []
        for rule in (LRP0(), ZPlus(0.0)):
            e = explain(free, x, preset=None, rules={"*": rule}, dtype=torch.float64, stabilizer=0.0,
                        **explain_kwargs(name))
            cons.append(f"{float(own_conservation(e.relevance, e.target_value).max()):.1e}")
        print(f"| {name} | {', '.join(errors)} | {cons[0]} | {cons[1]} |")


if __name__ == "__main__":  # pragma: no cover
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    (_print_oracles if "--oracles" in sys.argv else _print_matrix)(args or list(NETS))
