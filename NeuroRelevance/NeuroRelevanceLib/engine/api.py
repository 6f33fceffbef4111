"""``explain``: layer-wise relevance propagation for any traceable PyTorch model.

Guarantees (docs/engine.md, "Guarantees"): every option is validated; the model's own forward runs
once on a private copy; relevance is propagated only through a graph that reproduced that output
(``verify.py``); a non-finite map is an error. Nothing global changes: grad/inference mode are set
for this thread only, the user's model, its flags and tensors and ``x`` are never modified.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import torch

from ..device import resolve_device
from ..errors import InputError, cause_line, one_tensor_error
from ..explanation.checks import check_dtype, check_input, check_model_device, check_rules_mapping
from ..explanation.conservation import relative_error
from ..explanation.filters import apply_filter, check_filter, make_filter
from ..explanation.result import Explanation
from ..explanation.target import selection
from .assign import RuleOptions, assign_rules, check_pass_through_matched
from .capture import Source, prepared
from .presets import get_preset
from .propagate import backward, check_supported
from .validate import (
    check_bounds,
    check_finite_map,
    check_map_substance,
    check_not_inflated,
    check_options,
    check_pass_through,
    check_representable,
)
from .verify import GraphMismatchError, _flat, verified_plan

Tensor = torch.Tensor


def _per_channel(v: Any, x: Tensor) -> Any:
    """A 1-D per-channel bound shaped (1, C, 1, …) like ``x``'s channels (so it compares per channel)."""
    if isinstance(v, Tensor) and v.dim() == 1 and x.dim() > 2 and v.numel() == x.shape[1]:
        return v.reshape(1, -1, *([1] * (x.dim() - 2)))
    return v


def _bounds(x: Tensor, low: Any, high: Any) -> tuple[Any, Any]:
    """zB bounds: given values, or the per-channel intensity range of ``x``."""
    low, high = _per_channel(low, x), _per_channel(high, x)
    dims = [0] + list(range(2, x.dim()))
    if low is None:
        low = x.amin(dim=dims, keepdim=True)[:1] if x.dim() > 2 else x.min()
    if high is None:
        high = x.amax(dim=dims, keepdim=True)[:1] if x.dim() > 2 else x.max()
    return low, high


def _reference(source: Source, x: Tensor, context: Any = None) -> Any:
    """The model's own output on ``x`` (a private copy in eval mode), run inside ``context`` (the graph following
    it, ``taps.py``); a clear error if it fails or is not finite."""
    try:
        with torch.no_grad(), (context if context is not None else contextlib.nullcontext()):
            out = source.reference(x.clone())  # a fresh copy: a model may normalise its input in place
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix
        line = cause_line(exc)
        hint = " An exported program accepts only the shapes it was exported with, unless exported with dynamic " \
               "dimensions (torch.export.Dim)." if "Guard failed" in line else ""
        raise InputError(f"The model failed on an input of shape {tuple(x.shape)}: {line}. Check the input "
                         f"shape/channels the model expects.{hint}") from exc
    if isinstance(out, dict):
        raise one_tensor_error(out)
    tensors = _flat(out) or []
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors):
        bad = [name for name, t in source.tensors() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        cause = f"its tensor(s) {', '.join(bad[:5])} contain NaN or infinite values; check the weights file" if bad \
            else "its activations overflow or divide by zero on this input"
        raise InputError(f"The model's output on this input contains NaN or infinite values ({cause}); "
                         "nothing can be explained.")
    return out


def explain(model: Any, x: Tensor, method: str = "lrp", preset: str | None = "epsilon-plus", target: Any = None,
            *, rules: dict | None = None, mask: Any = None, epsilon: float = 1e-6, gamma: float = 0.25,
            low: Any = None, high: Any = None, filter: str | None = None,
            filter_range: tuple = (0.0, 1.0), filter_placement: str = "input", filter_per_channel: bool = False,
            batchnorm: str = "fold", pass_through: Iterable[str] = (), device: str | torch.device = "auto",
            dtype: torch.dtype | None = None, stabilizer: float = 1e-6, **unknown: Any) -> Explanation:
    """Layer-wise relevance propagation of ``model`` at input ``x`` (see docs/engine.md).

    ``model``: nn.Module, ScriptModule, ExportedProgram, or a path to a .pt2/TorchScript file.
    ``x``: (N, C, *spatial). ``preset``: a registered preset name (``presets.PRESETS``) or None; ``rules``
    overrides per layer.
    ``stabilizer``: the small constant of z+, αβ, γ, w², flat, zB and of sum/pool splits (zennit: 1e-6).
    Returns an ``Explanation``; the model and ``x`` are left untouched.
    """
    t0 = time.perf_counter()
    if unknown:  # a misspelled keyword: one clear error naming it and the closest option
        from ..explanation.keywords import RUN_OWN
        from ..explanation.keywords import check_options as check_keywords
        check_keywords("lrp", unknown, settings=RUN_OWN, where="explain()")
    if method != "lrp":
        raise ValueError(f"method {method!r} is not provided by the relevance engine; use method='lrp'.")
    get_preset(preset)  # an unknown name: one clear error before anything runs
    if batchnorm not in ("fold", "pass"):
        raise ValueError(f"batchnorm must be 'fold' or 'pass', not {batchnorm!r}.")
    check_filter(filter, filter_range, filter_placement)
    epsilon, gamma, stabilizer = check_options(epsilon, gamma, stabilizer, low, high)
    passing = check_pass_through(pass_through)
    check_rules_mapping(rules)
    check_input(x)
    check_model_device(model)
    dev = resolve_device(device)
    dt = check_dtype(dtype)
    check_representable(dt, epsilon=epsilon, gamma=gamma, stabilizer=stabilizer)
    # the caller's grad/inference mode must not change the map: our own (thread-local) modes from here on
    with torch.inference_mode(False), torch.enable_grad():
        xw = x.detach().to(device=dev, dtype=dt, copy=True)
        bounds_given = low is not None and high is not None
        low, high = _bounds(xw, low, high)
        check_bounds(low, high)
        opts = RuleOptions(preset, rules, epsilon, gamma, stabilizer, low, high, bounds_given, passing)
        used: dict[str, str] = {}

        def configure(plan):
            used.clear()
            used.update(assign_rules(plan, opts))

        with prepared(model, xw, dev, dt) as source:
            try:
                plan, rec, out, graph_check = verified_plan(source, xw, lambda ctx: _reference(source, xw, ctx), dt,
                                                            batchnorm, configure)
            except GraphMismatchError:
                if source.entry is None or not source.entry.graphs or source.refresh is None:
                    raise
                source = source.refresh()  # cached graphs failed: capture afresh before refusing
                plan, rec, out, graph_check = verified_plan(source, xw, lambda ctx: _reference(source, xw, ctx), dt,
                                                            batchnorm, configure)
            if source.entry is not None:
                reused = source.entry.winner.get(tuple(xw.shape)) == plan.captured.source
                source.entry.winner[tuple(xw.shape)] = plan.captured.source
                graph_check += " (graph captured on an earlier call, checked again on this input)" if reused else ""
        check_supported(plan)
        check_pass_through_matched(plan, passing)
        return _relevance(plan, rec, out, target, mask, stabilizer, (filter, filter_range, filter_placement,
                                                                     filter_per_channel),
                          dict(device=dev, dtype=dt, method=method, preset=preset, rules=used,
                               graph_source=plan.captured.source, stripped=plan.stripped, graph_check=graph_check),
                          t0)


def _relevance(plan: Any, rec: Any, out: Any, target: Any, mask: Any, stabilizer: float, filtering: tuple,
               fields: dict, t0: float) -> Explanation:
    """Seed the verified graph's output with the target and walk it back to the input."""
    filter, filter_range, filter_placement, filter_per_channel = filtering
    if not isinstance(out, Tensor):
        raise one_tensor_error(out)
    if out.dim() == 0 and rec.input.shape[0] != 1:
        raise InputError(f"The model returns one scalar for the whole batch of {rec.input.shape[0]} samples; "
                         "explain one sample at a time (x[i:i + 1]).")
    weights, target_desc = selection(out, target, mask)
    seed = out * weights
    target_value = seed.flatten(1).sum(1) if seed.dim() > 1 else seed.reshape(-1)
    layer_filter = make_filter(filter, filter_range, filter_per_channel) if filter_placement == "every-layer" \
        else None
    with torch.no_grad():
        r_in, totals = backward(plan, rec, seed.reshape(out.shape), stabilizer, layer_filter)
        check_finite_map(r_in, totals)
        check_not_inflated(r_in, seed, target_value, totals)
        if filter is not None and filter_placement == "input":
            r_in = apply_filter(r_in, filter, filter_range, filter_per_channel)
    del rec
    total_in = r_in.flatten(1).sum(1)
    totals[plan.input_node.name] = total_in
    err = relative_error(total_in, target_value)
    check_map_substance(r_in, target_value, err)
    return Explanation(
        relevance=r_in.detach().cpu(), output=out.detach().cpu(), target_value=target_value.detach().cpu(),
        layer_totals=type(totals)((k, v.detach().cpu()) for k, v in totals.items()),
        conservation_error=err.detach().cpu(), max_conservation_error=float(err.max()),
        seconds=time.perf_counter() - t0, target=target_desc, **fields)
