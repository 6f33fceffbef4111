"""Checks of every number the engine is given and of every map it returns: one clear error each."""
from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Real
from types import FrameType
from typing import Any

import torch

from ..errors import InputError

Tensor = torch.Tensor


class NonFiniteRelevanceError(ValueError):
    """The propagation produced NaN or infinite relevance; no map is returned."""


class InflatedRelevanceError(InputError):
    """The map sums to absurdly more than the explained value (a rule divided by a near-zero denominator); no map
    is returned."""


class ConservationWarning(UserWarning):
    """The map kept almost none of the explained value (absorbed) or far more than it (inflated)."""


#: a map whose total |relevance| is below this fraction of |f| warns "absorbed"
ABSORBED_WARN = 0.01
#: a map whose |ΣR| exceeds this multiple of |f| warns "inflated" (untrained biased BatchNorm CNNs reach ~5x on
#: small logits, so 2x would be noise)
INFLATED_WARN = 10.0
#: a map whose |ΣR| exceeds this multiple of Σ|f| is refused (``InflatedRelevanceError``): legitimate rules stay far
#: below (α2β1 reaches 214x on MONAI's DenseNet121, ε 130x on an untrained segmenter whose bias outweighs its output;
#: benchmarks/bench_inflation.py), a near-zero denominator gave 3e7-1e22x
INFLATED_REFUSE = 1e4


#: conservation warnings held back by :func:`held_warnings` in this thread/context (None: warn at once)
_HELD: ContextVar[list[str] | None] = ContextVar("neurorelevance_held_warnings", default=None)


@contextmanager
def held_warnings() -> Iterator[list[str]]:
    """Hold this context's ``ConservationWarning`` messages in the yielded list instead of warning: a caller
    that may refuse the map (``jobs.compute``) warns only once it keeps it. Thread- and context-local (a
    ``ContextVar``, not the process-wide warning filters)."""
    held: list[str] = []
    token = _HELD.set(held)
    try:
        yield held
    finally:
        _HELD.reset(token)


def _conservation_warning(message: str, level: int) -> None:
    held = _HELD.get()
    if held is not None:
        held.append(message)
    else:
        warnings.warn(message, ConservationWarning, stacklevel=level + 1)


def caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside NeuroRelevanceLib (the caller's line), for ``warnings.warn``
    called by the function that calls this."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level

_EXAMPLES = {"epsilon": "1e-6", "gamma": "0.25", "stabilizer": "1e-6", "alpha": "1", "beta": "0"}


def nonnegative(name: str, value: Any, where: str = "explain()") -> float:
    """``value`` as a finite float ≥ 0, or an ``InputError`` naming ``name`` and the fix."""
    if isinstance(value, bool) or not isinstance(value, Real) and not (
            isinstance(value, Tensor) and value.numel() == 1):
        raise InputError(f"{where}: {name} must be a number >= 0, not {value!r}.")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InputError(f"{where}: {name} must be a finite number >= 0, not {v}; e.g. "
                         f"{name}={_EXAMPLES.get(name, '0')}.")
    return v


def check_bounds(low: Any, high: Any, where: str = "explain()") -> None:
    """zB bounds: finite, and ``low <= high`` everywhere (scalars or per-channel tensors)."""
    values = {}
    for name, v in (("low", low), ("high", high)):
        if v is None:
            continue
        if isinstance(v, bool):
            raise InputError(f"{where}: {name} must be a number or a per-channel tensor, not {v!r}.")
        try:
            t = torch.as_tensor(v, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{where}: {name} must be a number or a per-channel tensor, not {v!r}.") from exc
        if not torch.isfinite(t).all():
            raise InputError(f"{where}: {name} contains NaN or infinite values; give finite zB bounds.")
        values[name] = t
    if len(values) == 2:
        try:
            bad = bool((values["low"] > values["high"]).any())
        except RuntimeError as exc:
            raise InputError(f"{where}: low and high have incompatible shapes {tuple(values['low'].shape)} and "
                             f"{tuple(values['high'].shape)}.") from exc
        if bad:
            raise InputError(f"{where}: low must not exceed high (got low={low}, high={high}); the zB box is "
                             "[low, high], e.g. the intensity range of the input.")


def check_options(epsilon: Any, gamma: Any, stabilizer: Any, low: Any, high: Any) -> tuple[float, float, float]:
    """Validate ``explain``'s numeric options; returns (epsilon, gamma, stabilizer) as floats."""
    eps = nonnegative("epsilon", epsilon)
    gam = nonnegative("gamma", gamma)
    stab = nonnegative("stabilizer", stabilizer)
    check_bounds(low, high)
    return eps, gam, stab


def check_representable(dtype: torch.dtype, **values: float) -> None:
    """Each of ``values`` (ε, γ, stabiliser) must be finite in the run's ``dtype`` (1e300 is inf in float32)."""
    top = torch.finfo(dtype).max
    for name, v in values.items():
        if v > top:
            raise InputError(f"explain(): {name}={v:g} overflows {str(dtype).replace('torch.', '')} (largest "
                             f"{top:.3g}), and every map would be zero; use a smaller {name} (e.g. "
                             f"{name}={_EXAMPLES.get(name, '1e-6')}) or dtype=torch.float64.")


def check_pass_through(names: Any) -> set:
    """``pass_through`` as a set of names (a single string is one name, not its letters)."""
    if names is None:
        return set()
    if isinstance(names, str):
        return {names}
    if not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        raise InputError(f"pass_through must be a set of operator or module names, e.g. {{'mul'}}, not {names!r}.")
    return set(names)


def check_finite_map(relevance: Tensor, totals: dict) -> None:
    """Refuse a map with NaN/inf, naming the first node (from the output) where relevance became non-finite."""
    if bool(torch.isfinite(relevance).all()):
        return
    where = next((name for name, t in totals.items() if not bool(torch.isfinite(t).all())), None)
    at = f"; it first became non-finite at node '{where}'" if where else ""
    raise NonFiniteRelevanceError(
        f"The relevance map contains NaN or infinite values{at}. No map is returned: a rule divided by a zero "
        "denominator or the model produced non-finite activations; use a positive stabilizer/epsilon or check "
        "the model weights.")


def check_map_substance(relevance: Tensor, target_value: Tensor, error: Tensor) -> None:
    """One ``ConservationWarning`` (at the caller's line) when the map is zero everywhere for a sample, keeps
    almost none of the explained value (total |relevance| < 1 % of |f|: absorbed by biases, ε, the rules'
    negative parts or operators passed through) or inflates it (|ΣR| > 10 |f|); silent on the ordinary losses of
    biased networks. ``error``: |ΣR − f| / |f| per sample (reported)."""
    per_sample = relevance.reshape(relevance.shape[0], -1)
    values = target_value.reshape(-1)
    level = caller_stacklevel()
    vanished = [i for i in range(per_sample.shape[0]) if not bool(per_sample[i].any())]
    if vanished:
        i = vanished[0]
        why = "the explained value is exactly zero" if float(values[i]) == 0.0 else (
            f"none of the explained value {float(values[i]):.4g} reached the input: biases absorbed it, the input is "
            "(nearly) zero or underflows, or the rules (z+, alpha-beta) found no positive contribution on the way")
        _conservation_warning(f"The relevance map is zero everywhere for sample(s) {vanished}: {why}. The map "
                              "shows nothing; try another target, dtype=torch.float64 or the 'epsilon' preset.",
                              level)
        return
    f = values.abs().to(per_sample.dtype) if values.numel() == per_sample.shape[0] else \
        values.abs().sum().expand(per_sample.shape[0]).to(per_sample.dtype)
    kept = per_sample.abs().sum(1) / f.clamp_min(torch.finfo(f.dtype).tiny)
    grown = per_sample.sum(1).abs() / f.clamp_min(torch.finfo(f.dtype).tiny)
    absorbed = [i for i in range(len(f)) if float(f[i]) > 0 and float(kept[i]) < ABSORBED_WARN]
    inflated = [i for i in range(len(f)) if float(f[i]) > 0 and float(grown[i]) > INFLATED_WARN]
    for bad, what in ((absorbed, "absorbed"), (inflated, "inflated")):
        if not bad:
            continue
        i = bad[0]
        how = (f"the map keeps only {100 * float(kept[i]):.3g} % of it: it was absorbed by biases, epsilon, the "
               "rules' negative parts or an operator passed through (pass_through=)") if what == "absorbed" else \
            (f"the map sums to {float(grown[i]):.3g} times it: relevance was inflated, e.g. by a negative bias or an "
             "operator passed through (pass_through=) that does not conserve it")
        _conservation_warning(
            f"Relevance {what} for sample(s) {bad} (sample {i}: the input's relevance sums to "
            f"{float(per_sample[i].sum()):.4g}, the explained value is {float(values[i]):.4g}; conservation error "
            f"{float(error.reshape(-1)[i]):.3g}): {how}. See Explanation.layer_totals for where it happened.", level)


def check_not_inflated(relevance: Tensor, seed: Tensor, target_value: Tensor, totals: dict) -> None:
    """Refuse a map whose |ΣR| exceeds ``INFLATED_REFUSE`` times the explained output's magnitude (Σ|seed|: |f| for a
    class, the unsigned sum over the mask for a segmentation) for some sample, naming the layers
    (``Explanation.layer_totals``, from the output) between which the total grew past that bound, and the fixes."""
    per_sample = relevance.reshape(relevance.shape[0], -1).sum(1).double().abs()
    scale = seed.reshape(seed.shape[0], -1).abs().sum(1).double() if seed.dim() > 1 else seed.reshape(-1).double().abs()
    if scale.numel() != per_sample.numel():
        scale = scale.sum().expand(per_sample.numel())
    bound = INFLATED_REFUSE * scale.clamp_min(torch.finfo(torch.float64).tiny)
    bad = [i for i in range(per_sample.numel()) if float(per_sample[i]) > float(bound[i])]
    if not bad:
        return
    i = bad[0]
    where, previous = None, None
    for name, total in totals.items():
        t = total.reshape(-1).double().abs()
        if float(t[i] if t.numel() > i else t.sum()) > float(bound[i]):
            where = name
            break
        previous = name
    if where and previous:
        at = f"It grew past that between '{previous}' and '{where}': in the rule of a layer between them"
    elif where:
        at = f"It is already past that at '{where}'"
    else:
        at = f"It grew past that below '{previous}', the layer nearest the input: in its rule"
    value = target_value.reshape(-1)
    raise InflatedRelevanceError(
        f"The relevance map sums to {float(per_sample[i] / scale[i].clamp_min(1e-300)):.3g} times the size of the "
        f"explained output (sample {i}: Σ|f| over the target {float(scale[i]):.4g}, Σf "
        f"{float(value[i] if value.numel() > i else value.sum()):.4g}; refused above {INFLATED_REFUSE:g} times): a "
        "rule divided by a near-zero denominator (ε on a layer whose output is normalised or shifted by a bias) or "
        f"α2β1's doubling compounded over very many layers, so the map is meaningless and none is returned. {at} "
        "(layer totals from the output, as in Explanation.layer_totals). Use preset='epsilon-plus' (z+ on "
        "convolutions), a larger epsilon (e.g. epsilon=0.25) or rules= for that layer.")
