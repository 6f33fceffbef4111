"""Shared plumbing of the gradient-based methods: a private working copy of the model, the input on
the chosen device, the explained scalar (same target handling as the LRP engine) and the result object.

Every method explains ``S(x) = Σ output(x) · W`` where ``W = explanation.target.selection(output(x), target, mask)``
is fixed once from the output at ``x`` (predicted class / class index / regression output / segmentation
channel summed over a mask), so all methods — LRP included — explain exactly the same number.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..device import resolve_device
from ..errors import InputError, cause_line, one_tensor_error
from ..explanation.checks import check_dtype, check_input
from ..explanation.result import Explanation
from ..explanation.target import selection
from ..explanation.working_copy import private_input, working_copy
from .options import check_finite

Tensor = torch.Tensor


def fixed_batch(model: Any) -> bool:
    """True for graph modules (exported programs), whose batch size may be fixed: run one item per sample."""
    return isinstance(model, torch.fx.GraphModule)


def forward(model: Any, x: Tensor) -> Tensor:
    """Run the model on a copy of ``x`` (a model may work on its input in place) and insist on one tensor output.

    The copy is differentiable: gradients reach ``x`` itself.
    """
    try:
        out = model(x.clone())
    except (InputError, MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failed on this input: re-raised with the fix
        if fixed_batch(model) and "Guard failed" in str(exc):
            raise InputError(f"The exported program does not accept a batch of {x.shape[0]} ({exc}); export it with "
                             f"a dynamic batch dimension (torch.export.Dim) or pass the nn.Module.") from exc
        raise model_failed(x, exc) from exc
    if not isinstance(out, Tensor):
        raise one_tensor_error(out)
    return out


def model_failed(x: Tensor, exc: Exception) -> InputError:
    """The error for a model that fails on ``x``, worded as the LRP engine words it."""
    line = cause_line(exc)
    hint = ""
    if isinstance(exc, TypeError) and "required positional argument" in line:
        hint = (" explain() passes the model one tensor x (N, C, *spatial); wrap a model with several inputs in a "
                "module whose forward takes that one tensor (e.g. one input per channel).")
    return InputError(f"The model failed on an input of shape {tuple(x.shape)}: {line}. Check the input "
                      f"shape/channels the model expects.{hint}")


@dataclass
class Target:
    """The explained scalar per sample: ``S_n = Σ out_n · weights_n`` with weights fixed at the input."""

    weights: Tensor
    description: str
    output: Tensor          # output at x (detached)
    value: Tensor           # S_n at x, shape (N,)

    def score(self, out: Tensor) -> Tensor:
        """S_n for an output of the same shape (per sample, differentiable)."""
        s = out * self.weights
        return s.flatten(1).sum(1) if s.dim() > 1 else s

    def score_repeated(self, out: Tensor, repeats: int) -> Tensor:
        """S for a batch made of ``repeats`` consecutive copies per sample (chunks of one sample's variants)."""
        w = self.weights.repeat_interleave(repeats, dim=0) if repeats > 1 else self.weights
        s = out * w
        return s.flatten(1).sum(1) if s.dim() > 1 else s


def target_from_output(out: Tensor, target: Any, mask: Any) -> Target:
    """Fix the selection weights from an output (``explanation.target.selection``)."""
    if not isinstance(out, Tensor):
        raise one_tensor_error(out)
    out = out.detach()
    if not torch.isfinite(out).all():
        raise InputError(f"The model's output at x has {int((~torch.isfinite(out)).sum())} non-finite value(s) (NaN "
                         f"or inf), so there is no target value to explain; check the input's intensity range and "
                         f"the model, or try dtype=torch.float64.")
    try:
        weights, desc = selection(out, target, mask)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    weights = weights.detach()
    s = out * weights
    value = s.flatten(1).sum(1) if s.dim() > 1 else s
    return Target(weights, desc, out, value.detach())


def make_target(model: Any, x: Tensor, target: Any, mask: Any) -> Target:
    """Forward ``x`` once (no grad) and fix the selection weights from its output."""
    with torch.no_grad():
        out = forward(model, x)
    return target_from_output(out, target, mask)


def target_and_score(model: Any, x: Tensor, target: Any, mask: Any) -> tuple[Target, Tensor, Tensor]:
    """One forward with grad: the target fixed from its output, the summed score ΣS (graph kept) and the leaf
    input it is a function of."""
    xi = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = forward(model, xi)
        tgt = target_from_output(out, target, mask)
        return tgt, tgt.score(out).sum(), xi


def target_and_gradient(model: Any, x: Tensor, target: Any, mask: Any) -> tuple[Target, Tensor]:
    """One forward with grad: the target fixed from its output, and ∂ΣS/∂x."""
    tgt, s, xi = target_and_score(model, x, target, mask)
    (g,) = torch.autograd.grad(s, xi)
    return tgt, g


def input_gradient(model: Any, x: Tensor, score: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """∂ΣS/∂x for a batch (samples are independent in eval mode, so this is the per-sample gradient)."""
    xi = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        s = score(forward(model, xi))
        (g,) = torch.autograd.grad(s.sum(), xi)
    return g, s.detach()


def package(method: str, relevance: Tensor, tgt: Target, device: torch.device, dtype: torch.dtype, t0: float,
            parameters: dict, completeness: Tensor | None = None) -> Explanation:
    """Wrap a map into the engine's result type (CPU tensors; NaN error where no conservation is claimed).

    A map with a non-finite value is refused (``InputError``), never returned.
    """
    check_finite(method, relevance)
    n = relevance.shape[0]
    total = relevance.detach().flatten(1).sum(1)
    if completeness is None:
        err = torch.full((n,), float("nan"), dtype=torch.float64)
        max_err = float("nan")
    else:
        err = completeness.detach().cpu()
        max_err = float(err.max())
    return Explanation(
        relevance=relevance.detach().cpu(), output=tgt.output.cpu(), target_value=tgt.value.cpu(),
        layer_totals=OrderedDict([("input", total.cpu())]), conservation_error=err, max_conservation_error=max_err,
        device=device, dtype=dtype, seconds=time.perf_counter() - t0, method=method, preset=None,
        rules={k: str(v) for k, v in parameters.items()}, target=tgt.description, parameters=dict(parameters))


def setup(model: Any, x: Any, device: Any, dtype: torch.dtype | None) -> tuple[Any, Tensor, torch.device,
                                                                                     torch.dtype]:
    """Check ``x``, resolve device/dtype, and make private copies of the model and of ``x`` there.

    Call it inside ``isolation.isolated()`` (the public methods are wrapped in it).
    """
    check_input(x)
    dev = resolve_device(device)
    dt = check_dtype(dtype)
    return working_copy(model, dev, dt), private_input(x, dev, dt), dev, dt
