"""Where our LRP spends its time on one benchmark network (``bench_engine.py --profile NET``).

Two views of one warm ``explain`` call: the torch profiler's operators (self CPU time by input shape), and
the engine's own phases (process CPU time): the forward pass with the trace check (``verified_plan``) against
the reverse walk, the walk split by operator kind and rule, and the layer convolutions inside it.

    python benchmarks/bench_profile.py preact 96x112x96 epsilon-plus          # phases only
    python benchmarks/bench_profile.py resnet18 96x112x96 eps --operators     # and the profiler's table
"""
from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from typing import Any

from bench_nets import build, explain_kwargs


def profile(net: str, size: tuple, preset: str | None, device_arg: str = "cpu", rows: int = 25) -> None:
    """Print the top operators (by self time, grouped by input shape) of one warm explain call."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from NeuroRelevanceLib.engine import explain

    device = torch.device("cuda" if device_arg == "cuda" else "cpu")
    model, x = build(net, size, device)
    kwargs: dict[str, Any] = explain_kwargs(net, x)
    explain(model, x, preset=preset, device=str(device), **kwargs)  # warm: copy and graph cached
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities, record_shapes=True) as prof:
        explain(model, x, preset=preset, device=str(device), **kwargs)
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows,
                                                             max_shapes_column_width=80))


def _timed(into: collections.Counter, key: Any, fn: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into[key(args) if callable(key) else key] += time.process_time() - t0
    return wrapper


def _step_name(args: tuple) -> str:
    from NeuroRelevanceLib.engine import operators

    op = args[0]
    if isinstance(op, operators.Linear):
        return f"  step Linear {op.rule.name}{' (affine)' if op.affine else ''}"
    return f"  step {type(op).__name__}"


def phases(net: str, size: tuple, preset: str | None) -> None:
    """Print forward+check vs walk, the walk by operator kind/rule and its layer convolutions (CPU, one call)."""
    import torch

    import NeuroRelevanceLib.engine.api as api
    import NeuroRelevanceLib.engine.layers as layers
    from NeuroRelevanceLib.engine import explain, operators

    model, x = build(net, size)
    kwargs = explain_kwargs(net, x)
    spent: collections.Counter = collections.Counter()
    saved = [(api, "verified_plan", api.verified_plan), (api, "backward", api.backward),
             (layers.LinearLayer, "forward", layers.LinearLayer.forward),
             (layers.LinearLayer, "vjp", layers.LinearLayer.vjp)]
    api.verified_plan = _timed(spent, "forward + trace check", api.verified_plan)
    api.backward = _timed(spent, "walk", api.backward)
    layers.LinearLayer.forward = _timed(spent, lambda a: f"  layer maps, both passes ({a[0].kind})",
                                        layers.LinearLayer.forward)
    layers.LinearLayer.vjp = _timed(spent, lambda a: f"  transposed maps ({a[0].kind})",
                                    layers.LinearLayer.vjp)
    for cls in set(operators.registered()) | {operators.Linear}:
        if "relevance" in cls.__dict__:
            saved.append((cls, "relevance", cls.__dict__["relevance"]))
            cls.relevance = _timed(spent, _step_name, cls.__dict__["relevance"])
    try:
        with torch.no_grad():
            model(x)
            t0 = time.process_time()
            model(x)
            fwd = time.process_time() - t0
        explain(model, x, preset=preset, device="cpu", **kwargs)
        spent.clear()
        t0 = time.process_time()
        explain(model, x, preset=preset, device="cpu", **kwargs)
        total = time.process_time() - t0
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    # layer maps during the forward pass (graph-side computations) are inside "forward + trace check"
    print(f"{net} {'×'.join(map(str, size))} preset={preset}: forward {fwd:.2f} s, explain {total:.2f} s "
          f"({total / fwd:.2f}× forward)")
    for key, secs in sorted(spent.items(), key=lambda kv: (kv[0].startswith(" "), -kv[1])):
        print(f"  {key:48s} {secs:7.3f} s  {secs / fwd:5.2f}× forward")


def main(argv: list[str]) -> int:
    import torch

    torch.set_num_threads(1)
    net, size, preset = argv[0], tuple(int(v) for v in argv[1].split("x")), argv[2]
    preset_ = None if preset in ("eps", "none", "None") else preset
    phases(net, size, preset_)
    if "--operators" in argv:
        profile(net, size, preset_)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
