"""Helpers shared by the engine tests on the reference architectures (not a test module).

- ``bias_free(model)``: zero the BatchNorm running means and betas (and randomise gammas and
  variances), so that a ``bias=False`` net is a bias-free piecewise-linear ReLU network even after
  BatchNorm folding.
- ``grad_times_input(model, x, select)``: the autograd oracle for LRP-0 on such networks.
- ``own_conservation(relevance, target_value)``: |ΣR − f| / |f| per sample, computed here rather
  than read from the engine's report.
- ``graph_formats(model, x)``, ``lrp0(model, x, target)``, ``relative_error(a, b)``: the same net as module,
  exported program and traced TorchScript; LRP-0 in the oracle's setting; the error measure.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to those of ``model`` on ``x`` (like a trained net), in place."""
    norms = [m for m in model.modules() if isinstance(m, _NORM_TYPES)]
    if not norms:
        return model.eval()
    saved = [(m, m.momentum) for m in norms]
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
            m.train()
        model(x.to(next(model.parameters()).dtype))
    for m, momentum in saved:
        m.momentum = momentum
    return model.eval()


def bias_free(model: nn.Module, seed: int = 0, shape: tuple = (2, 1, 12, 12, 12)) -> nn.Module:
    """Calibrate the BatchNorms on noise of ``shape``, then zero their running means and betas (in place).

    With ``bias=False`` convolutions this leaves a bias-free ReLU network whose activations keep a
    healthy scale: BatchNorm folding adds no bias, and every BatchNorm is a per-channel scaling.
    """
    gen = torch.Generator().manual_seed(seed)
    calibrate(model, torch.randn((max(2, shape[0]),) + tuple(shape[1:]), generator=gen))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _NORM_TYPES):
                m.running_mean.zero_()
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.zero_()
    return model.eval()


def randomise_batchnorm(model: nn.Module, seed: int = 0, shape: tuple = (2, 1, 12, 12, 12)) -> nn.Module:
    """Calibrate the BatchNorms on noise of ``shape``, then perturb gamma and beta (like a trained net)."""
    gen = torch.Generator().manual_seed(seed)
    calibrate(model, torch.randn((max(2, shape[0]),) + tuple(shape[1:]), generator=gen))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _NORM_TYPES):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
    return model.eval()


def grad_times_input(model: nn.Module, x: torch.Tensor,
                     select: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (x * d select(model(x)) / dx, select(model(x))) in x's dtype, with a private model copy.

    ``select`` maps the output batch to one scalar per sample (shape ``(N,)``).
    """
    m = copy.deepcopy(model).to(x.dtype).eval()
    xg = x.detach().clone().requires_grad_(True)
    values = select(m(xg))
    (grad,) = torch.autograd.grad(values.sum(), xg)
    return (grad * xg).detach(), values.detach()


def own_conservation(relevance: torch.Tensor, target_value: torch.Tensor) -> torch.Tensor:
    """|Σ_input R − f| / |f| per sample."""
    total = relevance.reshape(relevance.shape[0], -1).sum(1).to(torch.float64)
    f = target_value.reshape(-1).to(torch.float64)
    return (total - f).abs() / f.abs()


def class_select(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Selector of logit ``index`` of a ``(N, K)`` output."""
    return lambda out: out[:, index]


def mask_select(channel: int, mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Selector of Σ over ``mask`` of output channel ``channel`` of a ``(N, K, D, H, W)`` output."""
    return lambda out: (out[:, channel] * mask.to(out.dtype)).flatten(1).sum(1)


def graph_formats(model: nn.Module, x: torch.Tensor, exported: bool = True, traced: bool = True) -> dict:
    """``model`` as nn.Module, as an exported program and traced to TorchScript (by name)."""
    out: dict = {"module": model}
    if exported:
        out["exported"] = torch.export.export(model, (x,))
    if traced:
        out["traced"] = torch.jit.trace(model, x)
    return out


def lrp0(model, x: torch.Tensor, target, **kw):
    """LRP-0 everywhere, float64, stabilizer 0: the setting of the gradient × input oracle."""
    from NeuroRelevanceLib.engine import explain

    return explain(model, x, preset=None, rules={"*": "lrp0"}, stabilizer=0.0, dtype=torch.float64, target=target,
                   **kw)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b|."""
    return float((a - b).abs().max() / b.abs().max())
