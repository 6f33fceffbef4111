"""Benchmark: our LRP against a forward pass and against zennit on the seed-003 3D ResNet.

Model: ``NeuroRelevanceLib.nets.PreActResNet3d()`` — 5 stages of 3/4/6/4/3 pre-activation units,
8→128 channels, 3.66 M parameters — in eval mode with non-trivial BatchNorm statistics.
For each input size and each measurement (forward, our LRP with ``preset="epsilon-plus"``,
zennit's ``EpsilonPlusFlat`` with a canonizer for our unit class, see ``zennit_preact.py``) a
fresh subprocess builds the model, runs one warm-up and ``--runs`` timed repetitions, and
reports the median time and its peak memory: ``ru_maxrss`` of that process minus its resident
size just before the first (warm-up) run on CPU, ``torch.cuda.max_memory_allocated`` minus the
memory allocated before the first run on CUDA — i.e. the memory the method needs on top of the
model and the input. Wall time and process CPU time (all threads) are both reported: on a
shared machine the CPU-time ratios are the steadier figure.

    python benchmarks/bench_engine.py --quick            # 48x56x48, a minute on 2 cores
    python benchmarks/bench_engine.py                    # 96x112x96 and 160x192x160 (slow on CPU)
    python benchmarks/bench_engine.py --sizes 96x112x96 --runs 5
    python benchmarks/bench_engine.py --profile --sizes 64x64x64   # where our LRP spends its time
    python benchmarks/bench_engine.py --check --quick    # also check our map equals zennit's first

Targets (issue 3): LRP/forward <= 2.5, LRP/zennit <= 0.5, LRP peak memory <= zennit's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("forward", "lrp", "zennit")
DEFAULT_SIZES = "96x112x96,160x192x160"
QUICK_SIZE = "48x56x48"


def _parse_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise SystemExit(f"bad size {text!r}: write D x H x W as e.g. 96x112x96")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _build(size, device):
    import torch
    from NeuroRelevanceLib import nets

    model = nets.build("PreActResNet3d", seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # trained-looking BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.05 * torch.randn(m.num_features, generator=gen))
    x = torch.rand((1, 1) + tuple(size), generator=gen)
    return model.to(device), x.to(device)


def _child(method: str, size: tuple[int, int, int], runs: int, warmup: int, device_arg: str) -> dict:
    """Run one measurement in this process and return its figures."""
    import torch

    device = torch.device("cuda" if device_arg == "auto" and torch.cuda.is_available() else
                          ("cpu" if device_arg == "auto" else device_arg))
    model, x = _build(size, device)
    if method == "forward":
        def step():
            with torch.no_grad():
                return model(x)
    elif method == "lrp":
        from NeuroRelevanceLib import explain

        def step():
            return explain(model, x, preset="epsilon-plus", device=str(device))
    else:
        sys.path.insert(0, str(HERE))
        from zennit_preact import zennit_relevance

        def step():
            return zennit_relevance(model, x, "EpsilonPlusFlat")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # baseline: model, input and imports in place, before the method first runs (the warm-up counts
    # towards the peak: freed memory that the allocator keeps would hide it from a later baseline)
    if device.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2 ** 20
    else:
        base = _current_rss_mb()
    for _ in range(warmup):
        step()
    sync()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {"method": method, "size": list(size), "times": times, "median": statistics.median(times),
            "cpu_times": cpu, "cpu_median": statistics.median(cpu),
            "peak_mb": peak - base, "process_peak_mb": peak, "device": str(device),
            "threads": torch.get_num_threads()}


def _measure(method, size, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--sizes", "x".join(map(str, size)),
           "--runs", str(args.runs), "--warmup", str(args.warmup), "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"method": method, "size": list(size), "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _profile(size, device_arg) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile
    from NeuroRelevanceLib import explain

    device = "cuda" if device_arg == "auto" and torch.cuda.is_available() else "cpu"
    model, x = _build(size, device)
    explain(model, x, preset="epsilon-plus", device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities, record_shapes=False) as prof:
        explain(model, x, preset="epsilon-plus", device=device)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    with profile(activities=activities) as prof_f:
        with torch.no_grad():
            model(x)
    print(prof_f.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def _check() -> None:
    """Agreement of our epsilon-plus with zennit's EpsilonPlus on a small bias-free ResNet (float64).

    Bias-free, with BatchNorm passed through on both sides (zennit cannot merge a pre-activation
    BatchNorm), the two must agree to round-off; this validates the zennit canonizer used for timing.
    """
    import torch
    from NeuroRelevanceLib import explain, nets

    sys.path.insert(0, str(HERE))
    from zennit_preact import zennit_relevance

    model = nets.build("PreActResNet3d", seed=0, widths=(4, 8, 8), units=(2, 2, 1), bias=False).double()
    x = torch.rand((1, 1, 16, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = explain(model, x, preset="epsilon-plus", batchnorm="pass", dtype=torch.float64, device="cpu")
    _, theirs = zennit_relevance(model, x, "EpsilonPlus")
    err = float((ours.relevance - theirs).abs().max() / theirs.abs().max())
    print(f"check: max|ours - zennit| / max|zennit| = {err:.2e} (bias-free ResNet, BatchNorm pass-through)")


def _table(results: list[dict]) -> str:
    rows = ["| input | forward s | LRP s | zennit s | LRP/forward | LRP/zennit | forward MB | LRP MB | zennit MB |",
            "|---|---|---|---|---|---|---|---|---|"]
    by: dict = {}
    for r in results:
        by.setdefault(tuple(r["size"]), {})[r["method"]] = r

    def fig(rs, m, key):
        return rs[m][key] if m in rs and key in rs[m] else float("nan")

    for size, rs in by.items():
        f, lrp, zen = (fig(rs, m, "median") for m in METHODS)
        fc, lc, zc = (fig(rs, m, "cpu_median") for m in METHODS)
        mem = [f"{fig(rs, m, 'peak_mb'):.0f}" for m in METHODS]
        rows.append(f"| 1×1×{'×'.join(map(str, size))} wall | {f:.2f} | {lrp:.2f} | {zen:.2f} | {lrp / f:.2f} | "
                    f"{lrp / zen:.2f} | {mem[0]} | {mem[1]} | {mem[2]} |")
        rows.append(f"| 1×1×{'×'.join(map(str, size))} CPU | {fc:.2f} | {lc:.2f} | {zc:.2f} | {lc / fc:.2f} | "
                    f"{lc / zc:.2f} | | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=None, help=f"comma-separated DxHxW sizes (default {DEFAULT_SIZES})")
    p.add_argument("--quick", action="store_true", help=f"one small size ({QUICK_SIZE})")
    p.add_argument("--runs", type=int, default=3, help="timed repetitions per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions before timing")
    p.add_argument("--methods", default=",".join(METHODS), help="subset of forward,lrp,zennit")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--json", default=None, help="also write the raw figures to this file")
    p.add_argument("--profile", action="store_true", help="profile our LRP at the first size instead")
    p.add_argument("--check", action="store_true", help="first compare our map with zennit's on a small net")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = [_parse_size(s) for s in (args.sizes or (QUICK_SIZE if args.quick else DEFAULT_SIZES)).split(",")]
    if args.child:
        print(json.dumps(_child(args.child, sizes[0], args.runs, args.warmup, args.device)))
        return 0
    if args.profile:
        _profile(sizes[0], args.device)
        return 0
    if args.check:
        _check()
    methods = [m for m in args.methods.split(",") if m]
    results = []
    for size in sizes:
        for method in methods:
            r = _measure(method, size, args)
            results.append(r)
            detail = r.get("error") or f"median {r['median']:.3f} s, peak +{r['peak_mb']:.0f} MB ({r['device']})"
            print(f"{'x'.join(map(str, size))} {method}: {detail}", flush=True)
    print()
    print(_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
