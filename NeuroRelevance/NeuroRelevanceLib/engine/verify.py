"""The trace check: a map is only computed on a graph that reproduced ``model(x)`` on this very input.

``verified_plan`` tries the source's graph candidates in order (fx → export → TorchScript for an
``nn.Module``), runs our propagation graph forward, and keeps the first whose output matches the
model's own forward within a tolerance set by the dtype. If none does, ``GraphMismatchError`` says,
for each candidate, what differed and where: the node where our graph failed, the first node where
our propagation graph departs from the captured graph, or (fx) the first module whose output
differs from the same module's output in the model's own forward.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from ..errors import InputError
from .capture import Candidate, Source
from .graph import Plan, build_plan
from .operators import Unknown
from .propagate import ForwardRun, GraphRunError, Recording, forward
from .taps import Lockstep, TapMismatch

Tensor = torch.Tensor

# max |graph − model| / max |model| allowed, by run dtype
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}


TF32_TOLERANCE = 1e-2  # float32 on a GPU whose convolutions/matmuls run in TF32 (PyTorch's default for cuDNN)


def tolerance(dtype: torch.dtype, device: torch.device) -> float:
    """The trace check's tolerance for a run in ``dtype`` on ``device``."""
    tol = TOLERANCE.get(dtype, 1e-4)
    if device.type == "cuda" and dtype == torch.float32:
        try:
            tf32 = bool(torch.backends.cudnn.allow_tf32) or bool(torch.backends.cuda.matmul.allow_tf32)
        except Exception:  # noqa: BLE001 - a torch without these flags: assume TF32 may be on
            tf32 = True
        if tf32:
            tol = max(tol, TF32_TOLERANCE)
    return tol


class GraphMismatchError(InputError):
    """No operator graph of the model reproduced its output on this input; no map was computed."""


def _flat(value: Any) -> list | None:
    """Tensors of a (nested) output in order; None for anything else."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        flat: list = []
        for part in (_flat(v) for v in value):
            if part is None:
                return None
            flat.extend(part)
        return flat
    if isinstance(value, dict):
        return _flat(list(value.values()))
    return [] if value is None else None


def difference(got: Any, want: Any) -> float:
    """max |got − want| / max |want| over all output tensors (inf if their structure or shapes differ)."""
    a, b = _flat(got), _flat(want)
    if a is None or b is None or len(a) != len(b):
        return float("inf")
    worst = 0.0
    for u, v in zip(a, b, strict=True):
        if u.shape != v.shape:
            return float("inf")
        if not v.numel():
            continue
        u, v = u.detach().to(torch.float64), v.detach().to(device=u.device, dtype=torch.float64)
        scale = float(v.abs().max())
        diff = float((u - v).abs().max())
        if diff != diff:
            return float("inf")
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def _where(step: Any) -> str:
    module = f", module '{step.module_path}'" if step.module_path else ""
    return f"node '{step.name}' ({step.label}{module})"


def _interpret(gm: fx.GraphModule, x: Tensor) -> dict[str, Any]:
    """Every node value of ``gm`` on ``x`` (cloned when recorded: in-place ops may overwrite them later)."""
    values: dict[str, Any] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n.name] = out.clone() if isinstance(out, Tensor) else out
            return out

    with torch.no_grad():
        Recorder(gm).run(x)
    return values


def _folded(step: Any) -> bool:
    layer = getattr(step, "layer", None)
    return layer is not None and bool(layer.folded)


def _first_departure(plan: Plan, values: dict, reference: dict, tol: float) -> str | None:
    for step in plan.steps:
        got, want = values.get(step.name), reference.get(step.name)
        if not isinstance(got, Tensor) or not isinstance(want, Tensor) or got.shape != want.shape:
            continue
        if _folded(step):
            continue  # its value already includes the folded BatchNorm
        d = difference(got, want)
        if d > tol:
            return f"{_where(step)}: max |Δ| / max |value| = {d:.2e}"
    return None


def _module_outputs(root: torch.nn.Module, x: Tensor) -> dict[str, list]:
    """Outputs of every submodule of our private ``root`` in the model's own forward, by qualified name."""
    seen: dict[str, list] = {}
    handles = []
    for name, module in root.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda m, a, out, _n=name: seen.setdefault(_n, []).append(
                    out.clone() if isinstance(out, Tensor) else out)))
    try:
        with torch.no_grad():
            root(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _first_module_difference(plan: Plan, values: dict, root: torch.nn.Module, x: Tensor, tol: float) -> str:
    seen = _module_outputs(root, x)
    calls: dict[str, int] = {}
    in_graph = set()
    last_good = None
    for step in plan.steps:
        if step.node.op != "call_module":
            continue
        path = str(step.node.target)
        in_graph.add(path)
        k = calls[path] = calls.get(path, -1) + 1
        outs = seen.get(path, [])
        if k >= len(outs):
            return f"first diverging {_where(step)}: the model's own forward never ran this module here"
        got = values.get(step.name)
        if got is None:
            continue
        d = difference(got, outs[k])
        if d > tol and not _folded(step):
            missing = [p for p in seen if p not in in_graph and not any(q.startswith(p + ".") for q in in_graph)]
            extra = f"; modules the model ran that are missing from the graph: {', '.join(missing[:5])}" \
                if missing else ""
            return f"first diverging {_where(step)}: max |Δ| / max |value| = {d:.2e}{extra}"
        last_good = step
    after = f" after {_where(last_good)}" if last_good is not None else ""
    return f"every module output agrees; the first difference is in functional code{after}"


def _diagnose(candidate: Candidate, plan: Plan, x: Tensor, tol: float) -> str:
    values: dict[str, Any] = {}
    try:
        forward(plan, x, record=values)
    except GraphRunError as exc:
        return f"our graph failed at {_where(exc.step)}: {exc.reason}"
    try:
        departure = _first_departure(plan, values, _interpret((candidate.fresh or candidate.build)().gm, x), tol)
    except Exception:  # noqa: BLE001 - diagnosis is best effort
        departure = None
    if departure:
        return f"our propagation graph departs from the captured graph at {departure}"
    if candidate.hooks_root is not None:
        return _first_module_difference(plan, values, candidate.hooks_root, x, tol)
    return "the captured graph itself computes a different output"


def _first_run(plan: Plan, x: Tensor, source: Source, root: nn.Module, reference_fn: Callable, tol: float) -> tuple:
    """The model's own forward with the graph's forward following it (``taps.py``): (reference, recording,
    effective output, whole output, a note on what was shared). A mismatch reruns the graph on its own."""
    lock = Lockstep(root, ForwardRun(plan, x), tol, source.entry.probes if source.entry else None)
    reference = reference_fn(lock)
    try:
        rec, out, full = lock.finish()
    except TapMismatch:
        rec, out, full = forward(plan, x)  # the check and its diagnosis exactly as without sharing
        return reference, rec, out, full, ""
    note = f"; {lock.used} layers shared with the model's own forward (inputs checked)" if lock.used else ""
    return reference, rec, out, full, note


def verified_plan(source: Source, x: Tensor, reference_fn: Callable[[Any], Any], dtype: torch.dtype,
                  batchnorm: str, configure: Callable[[Plan], None]) -> tuple[Plan, Recording, Any, str]:
    """The first candidate graph that reproduces the model's own output on ``x``: (plan, forward recording,
    effective output, a sentence saying what was checked). Raises ``GraphMismatchError`` when none does.

    ``reference_fn(context)`` runs the model's own forward on our copy inside ``context`` (None, or the
    ``Lockstep`` of the first graph, which then follows it: one forward pass for both) and checks it."""
    tol = tolerance(dtype, x.device)
    attempts: list[str] = []
    structural: Exception | None = None
    ran = False
    reference: Any = None
    random: Any = None
    for candidate in source.candidates:
        try:
            captured = candidate.build()
        except Exception as exc:  # noqa: BLE001 - try the next way of obtaining a graph
            attempts.append(f"{candidate.name}: no graph ({type(exc).__name__}: {_line(exc)})")
            continue
        try:
            plan = build_plan(captured, batchnorm)
        except ValueError as exc:
            structural = structural or exc
            attempts.append(f"{candidate.name}: {_line(exc)}")
            continue
        user_error: InputError | None = None
        try:
            configure(plan)
        except InputError as exc:  # e.g. a rules key naming no layer: raised once this graph is verified
            user_error = exc
        ran = True
        try:
            if ran and reference is None and candidate.hooks_root is not None and source.tap_root is not None:
                reference, kept, out, full, shared = _first_run(plan, x, source, source.tap_root, reference_fn, tol)
            else:
                if reference is None:
                    reference = reference_fn(None)
                (kept, out, full), shared = forward(plan, x), ""
        except GraphRunError as exc:
            attempts.append(f"{candidate.name}: our graph failed at {_where(exc.step)} although the model ran "
                            f"({exc.reason})")
            continue
        d = difference(full, reference)
        random = random or _random_step(plan)
        opaque = _opaque(plan)
        if d <= tol and opaque is not None:  # right output, but a scripted submodule hides its operators
            del kept
            attempts.append(f"{candidate.name}: {_where(opaque)} is an opaque call into a scripted submodule")
            continue
        if d <= tol and user_error is not None:
            raise user_error
        if d <= tol:
            before = f" (after {'; '.join(attempts)})" if attempts else ""
            return plan, kept, out, (f"{captured.source} graph reproduced model(x): max |Δ| / max |y| = {d:.1e} "
                                     f"≤ {tol:.0e}{shared}{before}")
        del kept
        attempts.append(f"{candidate.name}: output differs from model(x) by max |Δ| / max |y| = {d:.2e} "
                        f"(tolerance {tol:.0e}); {_diagnose(candidate, plan, x, tol)}")
    if reference is None:
        reference_fn(None)  # a model that fails on this input says so before any graph does
    if structural is not None and not ran:
        raise structural  # e.g. several inputs: every graph says so, the message names the fix
    raise GraphMismatchError(
        f"No operator graph of this {source.kind} reproduced its output on this input, so no relevance map was "
        f"computed (a map of a different network would look just as plausible). Tried: {' | '.join(attempts)}. "
        f"{_training_hint(random)}Make the forward deterministic and free of Python branches on tensors (or export "
        "it with torch.export), or report the model to the NeuroRelevance developers.")


#: operators that draw random numbers: in a captured graph, dropout left in training mode
_RANDOM = {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "native_dropout", "bernoulli",
           "dropout1d", "dropout2d", "dropout3d", "rand", "randn", "rand_like", "randn_like"}


def _random_step(plan: Plan) -> Any | None:
    """The first step of ``plan`` that draws random numbers (dropout in training mode), or None."""
    for step in plan.steps:
        name = step.label.split(".")[-1]
        if name in _RANDOM or name.rstrip("_") in _RANDOM:
            return step
    return None


def _training_hint(step: Any | None) -> str:
    """The likely cause when the graph draws random numbers: a model traced or scripted in training mode."""
    if step is None:
        return ""
    return (f"The graph draws random numbers at {_where(step)}: dropout is active, as in a model traced or scripted "
            "in training mode; call model.eval() before torch.jit.trace (or torch.jit.script / torch.export) and "
            "save the model again. ")


def _opaque(plan: Plan) -> Any | None:
    """The first step that calls a TorchScript submodule as a black box (no operators to propagate through)."""
    for step in plan.steps:
        if not isinstance(step, Unknown):
            continue
        if step.node.op == "call_method" and step.node.target == "forward":
            return step
        if step.node.op == "call_module" and isinstance(
                plan.captured.gm.get_submodule(str(step.node.target)), torch.jit.ScriptModule):
            return step
    return None


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
