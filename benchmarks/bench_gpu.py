"""Benchmark on CUDA: the engine table of ``bench_engine.py`` on the GPU, plus one 1 mm heatmap.

1. The table (same networks, inputs and presets as ``bench_engine.py``): forward, ours and zennit timed
   round-robin in one process per network (CUDA-synchronised), peak memory per (row, method) in its own
   process from ``torch.cuda.max_memory_allocated``.
2. A 1 mm MNI-grid heatmap (1×1×182×218×182) for the brain-age ResNet (tensor-decomposition paper) and
   MONAI DenseNet121 with ``preset="epsilon-plus"``: wall time of a warm call (median of ``--runs``), of the
   first call (copy, trace, cuDNN autotuning), and the peak ``torch.cuda.max_memory_allocated`` of the call
   above what the model and the input take. Goal (issue 14): < 1 s per heatmap on a current GPU.

Without CUDA it says so and exits with status 2 (``--device cpu`` runs the same code on the CPU, which the
test suite does at tiny sizes).

    python benchmarks/bench_gpu.py                      # both parts, on cuda:0
    python benchmarks/bench_gpu.py --heatmap-only --runs 5
    python benchmarks/bench_gpu.py --table-only --no-zennit --json gpu.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_nets import ONE_MM, build, explain_kwargs  # noqa: E402

HEATMAP_NETS = ("preact", "densenet121")
GOAL_S = 1.0


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def heatmap(net: str, size: tuple, device: Any, runs: int, preset: str | None = "epsilon-plus") -> dict:
    """Time one heatmap of ``net`` at ``size`` on ``device`` (first call, then warm calls) and its peak memory."""
    import torch

    from NeuroRelevanceLib.engine import clear_cache, explain

    clear_cache()
    model, x = build(net, size, device)
    kwargs = explain_kwargs(net, x)
    cuda = device.type == "cuda"
    if cuda:
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    t0 = time.perf_counter()
    e = explain(model, x, preset=preset, device=str(device), **kwargs)
    _sync(device)
    first = time.perf_counter() - t0
    peak_mb = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20 if cuda else None
    warm = []
    for _ in range(runs):
        t0 = time.perf_counter()
        explain(model, x, preset=preset, device=str(device), **kwargs)
        _sync(device)
        warm.append(time.perf_counter() - t0)
    with torch.no_grad():
        model(x)  # the forward pass, for the ratio
        _sync(device)
        fwd = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            fwd.append(time.perf_counter() - t0)
    return {"net": net, "size": list(size), "preset": preset, "device": str(device),
            "first_s": first, "warm_s": warm, "median_s": statistics.median(warm),
            "forward_s": statistics.median(fwd), "peak_mb": peak_mb,
            "conservation_error": e.max_conservation_error, "graph_check": e.graph_check,
            "gpu": torch.cuda.get_device_name(device) if cuda else "cpu"}


def heatmap_lines(results: list[dict]) -> str:
    """A markdown table of the heatmap runs."""
    out = ["| network | input | device | first call s | warm s (median) | forward s | ours/fwd | peak MB | goal |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        peak = "–" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        goal = "✓" if r["median_s"] < GOAL_S else "✗"
        out.append(f"| {r['net']} | {'×'.join(map(str, r['size']))} | {r['gpu']} | {r['first_s']:.2f} | "
                   f"{r['median_s']:.3f} | {r['forward_s']:.3f} | {r['median_s'] / r['forward_s']:.2f} | {peak} | "
                   f"{goal} < {GOAL_S:g} s |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (the suite's self-test)")
    p.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    p.add_argument("--heatmap-only", action="store_true")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--no-zennit", action="store_true")
    p.add_argument("--size", default=None, help="heatmap input D×H×W (default the 1 mm grid 182×218×182)")
    p.add_argument("--nets", default=",".join(HEATMAP_NETS), help="heatmap networks")
    p.add_argument("--json", default=None, help="write the figures to this file")
    args = p.parse_args(argv)
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device here (torch.cuda.is_available() is False); run it on a machine "
              "with a GPU, or use benchmarks/bench_engine.py for the CPU table.", file=sys.stderr)
        return 2
    figures: dict = {}
    if not args.table_only:
        size = tuple(int(v) for v in args.size.split("x")) if args.size else ONE_MM
        results = [heatmap(n, size, device, args.runs) for n in args.nets.split(",") if n]
        figures["heatmap"] = results
        print(heatmap_lines(results), flush=True)
    if not args.heatmap_only:
        from bench_engine import main as table_main

        flags = ["--device", str(device), "--runs", str(args.runs)] + (["--no-zennit"] if args.no_zennit else [])
        if args.json:
            flags += ["--json", str(Path(args.json).with_suffix(".table.json"))]
        table_main(flags)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
