"""Where our LRP spends its time on one benchmark network (``bench_engine.py --profile NET``)."""
from __future__ import annotations

from typing import Any, Optional

from bench_nets import build, explain_kwargs


def profile(net: str, size: tuple, preset: Optional[str], device_arg: str = "cpu", rows: int = 25) -> None:
    """Print the top operators (by self time, grouped by input shape) of one warm explain call."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

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
