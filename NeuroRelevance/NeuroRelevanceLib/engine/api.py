"""``explain``: layer-wise relevance propagation for any traceable PyTorch model."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional, Union

import torch

from ..device import resolve_device
from .capture import capture
from .checks import check_dtype, check_input
from .explanation import Explanation
from .filters import apply_filter, check_filter, make_filter
from .graph import build_plan
from .presets import PRESETS, check_rule_keys, override_rule, preset_rule
from .propagate import backward, forward
from .rules import ZBox
from .target import selection

Tensor = torch.Tensor


def _bounds(x: Tensor, low: Any, high: Any) -> tuple[Any, Any]:
    """zB bounds: given values, or the per-channel intensity range of ``x``."""
    dims = [0] + list(range(2, x.dim()))
    if low is None:
        low = x.amin(dim=dims, keepdim=True)[:1] if x.dim() > 2 else x.min()
    if high is None:
        high = x.amax(dim=dims, keepdim=True)[:1] if x.dim() > 2 else x.max()
    return low, high


def explain(model: Any, x: Tensor, method: str = "lrp", preset: Optional[str] = "epsilon-plus", target: Any = None,
            *, rules: Optional[dict] = None, mask: Any = None, epsilon: float = 1e-6, gamma: float = 0.25,
            low: Any = None, high: Any = None, filter: Optional[str] = None,
            filter_range: tuple = (0.0, 1.0), filter_placement: str = "input", filter_per_channel: bool = False,
            batchnorm: str = "fold", pass_through: Iterable[str] = (), device: Union[str, torch.device] = "auto",
            dtype: Optional[torch.dtype] = None, stabilizer: float = 1e-6) -> Explanation:
    """Layer-wise relevance propagation of ``model`` at input ``x`` (see docs/engine.md).

    ``model``: nn.Module, ScriptModule, ExportedProgram, or a path to a .pt2/TorchScript file.
    ``x``: (N, C, *spatial). ``preset``: one of ``PRESETS`` or None; ``rules`` overrides per layer.
    ``stabilizer``: the small constant of z+, αβ, γ, w², flat, zB and of sum/pool splits (zennit: 1e-6).
    Returns an ``Explanation``; the model and ``x`` are left untouched.
    """
    t0 = time.perf_counter()
    if method != "lrp":
        raise ValueError(f"method {method!r} is not provided by the relevance engine; use method='lrp'.")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)} or None.")
    if batchnorm not in ("fold", "pass"):
        raise ValueError(f"batchnorm must be 'fold' or 'pass', not {batchnorm!r}.")
    check_filter(filter, filter_range, filter_placement)
    check_input(x)
    dev = resolve_device(device)
    dt = check_dtype(dtype)
    xw = x.detach().to(device=dev, dtype=dt)
    bounds_given = low is not None and high is not None
    low, high = _bounds(xw, low, high)

    captured = capture(model, xw, dev, dt)
    plan = build_plan(captured, batchnorm)
    passing = set(pass_through or ())
    used: dict[str, str] = {}
    names = {s.module_path or s.name for s in plan.steps if s.kind == "linear"} | {
        s.name for s in plan.steps if s.kind == "linear"}
    check_rule_keys(rules, names)
    for step in plan.steps:
        if step.kind in ("unknown", "scale") and passing & {step.label, step.label.split(".")[-1], step.name, step.module_path,
                                                 getattr(step.module_type, "__name__", str(step.module_type))}:
            step.kind = "passthrough_grad"
        if step.kind != "linear":
            continue
        rule = override_rule(rules, step.module_path, step.name, step.module_type, step.consumes_input)
        if rule is None:
            rule = preset_rule(preset, step.layer.kind, step.consumes_input, epsilon, gamma, low, high, bounds_given)
        if isinstance(rule, ZBox) and (rule.low is None or rule.high is None):
            rule = ZBox(low if rule.low is None else rule.low, high if rule.high is None else rule.high,
                        rule.stabilizer)
        step.rule = rule
        step.layer.set_companions(rule.companions(step.layer))
        label = step.module_path or step.name
        kind = getattr(step.module_type, "__name__", None) or str(step.module_type or step.label)
        folded = f" + folded {', '.join(step.layer.folded)}" if step.layer.folded else ""
        used[label if label not in used else f"{label} ({step.name})"] = f"{kind}{folded}: {rule.describe()}"

    kept, out = forward(plan, xw)
    if not isinstance(out, Tensor):
        raise ValueError("The model output is not a tensor; wrap the model so that it returns one tensor.")
    weights, target_desc = selection(out, target, mask)
    seed = out * weights
    target_value = seed.flatten(1).sum(1) if seed.dim() > 1 else seed
    layer_filter = make_filter(filter, filter_range, filter_per_channel) if filter_placement == "every-layer" \
        else None
    with torch.no_grad():
        r_in, totals = backward(plan, kept, seed.reshape(out.shape), stabilizer, layer_filter)
        if filter is not None and filter_placement == "input":
            r_in = apply_filter(r_in, filter, filter_range, filter_per_channel)
    del kept
    total_in = r_in.flatten(1).sum(1)
    totals[plan.input_node.name] = total_in
    denom = target_value.abs()
    err = (total_in - target_value).abs() / torch.where(denom > 0, denom, torch.ones_like(denom))
    return Explanation(
        relevance=r_in.detach().cpu(), output=out.detach().cpu(), target_value=target_value.detach().cpu(),
        layer_totals=type(totals)((k, v.detach().cpu()) for k, v in totals.items()),
        conservation_error=err.detach().cpu(), max_conservation_error=float(err.max()), device=dev, dtype=dt,
        seconds=time.perf_counter() - t0, method=method, preset=preset, rules=used, target=target_desc,
        graph_source=captured.source, stripped=plan.stripped)
