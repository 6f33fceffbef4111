"""Benchmark: our LRP against a plain forward pass and against zennit, on real 3-D networks (issue 14).

Rows (network × input × preset):
  brain-age ResNet of the tensor-decomposition paper (``nets.PreActResNet3d``, 3.7 M parameters) at 96×112×96
  and 160×192×160,
  MONAI resnet18 (3D, 33 M) and DenseNet121 (3D, 11 M) at 96×112×96, MONAI UNet (16…256 channels,
  two residual units per level, 4.8 M) at 128³; presets ε (``preset=None``), ``epsilon-plus`` and
  ``alpha1-beta0``. zennit 0.5 runs the same rules (``LayerMapComposite`` of Epsilon / ZPlus ignoring
  biases / AlphaBeta(1, 0)); on the brain-age ResNet with the pre-activation canonizer of
  ``zennit_preact.py``, on MONAI's nets without canonizers (timing only: zennit sees MONAI's
  residual adds, concatenations and BatchNorms as plain gradients). Weights are random, BatchNorm statistics
  non-trivial.

Timing: per network ONE process runs every method of every preset round-robin (forward, ours, zennit,
forward, …) after a warm-up, so the ratios share the machine's load; medians of ``--runs`` (≥ 3) wall
and process-CPU times (the forward pass's median pools its runs of all presets). Peak memory: a fresh
subprocess per (row, method) runs it once; peak =
``ru_maxrss`` minus the resident size before the run (model and input loaded) on CPU,
``torch.cuda.max_memory_allocated`` minus the allocated memory before the run on CUDA.

Targets (issue 14): ε ≤ 2.0× forward, epsilon-plus and α1β0 ≤ 2.5× forward, time ≤ 0.5× zennit's, peak
memory ≤ 2.5× the forward pass's and ≤ zennit's.

    python benchmarks/bench_engine.py --quick                 # half-size inputs
    nice python benchmarks/bench_engine.py --json out.json    # the table (an hour or more on 2 cores)
    python benchmarks/bench_engine.py --nets resnet18 --presets epsilon-plus --no-zennit
    python benchmarks/bench_engine.py --profile resnet18 --presets epsilon-plus --quick
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_nets import NETS, ROWS, build, explain_kwargs, preset_label  # noqa: E402

METHODS = ("forward", "ours", "zennit")
TARGET = {None: 2.0, "epsilon-plus": 2.5, "alpha1-beta0": 2.5}


def _build(size: tuple, device: Any = "cpu") -> tuple[Any, Any]:
    """The brain-age ResNet (tensor-decomposition paper) and an input (kept for ``bench_methods.py``)."""
    return build("preact", size, device)


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _device(arg: str):
    import torch

    if arg == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(arg)


def make_step(method: str, net: str, model: Any, x: Any, preset: str | None, device: Any) -> Callable[[], Any]:
    """A no-argument function running ``method`` once (its result is discarded by the caller)."""
    import torch

    if method == "forward":
        def forward():
            with torch.no_grad():
                return model(x)
        return forward
    if method == "ours":
        from NeuroRelevanceLib.engine import explain

        kwargs = explain_kwargs(net, x)

        def ours():
            return explain(model, x, preset=preset, device=str(device), **kwargs)
        return ours
    from bench_zennit import zennit_step

    return zennit_step(net, model, x, preset)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def time_row(net: str, size: tuple, presets: list, methods: list, runs: int, device_arg: str) -> list[dict]:
    """Time every (preset, method) of one network in this process, round-robin; medians of ``runs`` rounds.
    The forward pass runs before each preset's methods in every round; its median pools all of them."""
    import torch

    device = _device(device_arg)
    model, x = build(net, size, device)
    steps = {(p, m): make_step(m, net, model, x, p, device) for p in presets for m in methods}
    for step in steps.values():  # warm-up: first-call costs (tracing, allocator) are not timed
        step()
    _sync(device)
    wall: dict = {k: [] for k in steps}
    cpu: dict = {k: [] for k in steps}
    for _ in range(runs):
        for key, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            _sync(device)
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    if "forward" in methods:  # one forward pass, whatever the preset: pool its samples
        pooled_wall = [t for p in presets for t in wall[(p, "forward")]]
        pooled_cpu = [t for p in presets for t in cpu[(p, "forward")]]
        for p in presets:
            wall[(p, "forward")], cpu[(p, "forward")] = pooled_wall, pooled_cpu
    return [{"net": net, "size": list(size), "preset": p, "method": m, "wall": wall[(p, m)], "cpu": cpu[(p, m)],
             "wall_median": statistics.median(wall[(p, m)]), "cpu_median": statistics.median(cpu[(p, m)]),
             "device": str(device), "threads": torch.get_num_threads(), "load": os.getloadavg()}
            for (p, m) in steps]


def peak_memory(net: str, size: tuple, preset: str | None, method: str, device_arg: str) -> dict:
    """Peak memory (MB) of one run of ``method`` on top of the loaded model and input, in this process."""
    import torch

    device = _device(device_arg)
    model, x = build(net, size, device)
    step = make_step(method, net, model, x, preset, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2 ** 20
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        base = _current_rss_mb()
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"net": net, "size": list(size), "preset": preset, "method": method, "peak_mb": peak - base,
            "device": str(device)}


def _child(args: argparse.Namespace, argv: list[str]) -> list:
    cmd = [sys.executable, str(Path(__file__).resolve())] + argv + ["--device", args.device,
                                                                     "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"  failed: {' '.join(argv)}: {tail}", flush=True)
        return []
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verdict(row: dict) -> str:
    """Which targets a row meets (✓) or misses (✗)."""
    marks = []
    fwd, ours, zen = row.get("forward"), row.get("ours"), row.get("zennit")
    if fwd and ours:
        marks.append(("✓" if ours / fwd <= TARGET[row["preset"]] else "✗") + f" ≤{TARGET[row['preset']]}×fwd")
    if ours and zen:
        marks.append(("✓" if ours / zen <= 0.5 else "✗") + " ≤0.5×zennit")
    mf, mo, mz = row.get("mem_forward"), row.get("mem_ours"), row.get("mem_zennit")
    if mf and mo:
        marks.append(("✓" if mo <= 2.5 * mf else "✗") + " mem ≤2.5×fwd")
    if mo and mz:
        marks.append(("✓" if mo <= mz else "✗") + " mem ≤zennit")
    return ", ".join(marks)


def table(results: list[dict], memory: list[dict], clock: str = "cpu") -> str:
    """The markdown table: one row per (network, input, preset)."""
    rows: dict = {}
    for r in results:
        row = rows.setdefault((r["net"], tuple(r["size"]), r["preset"]), {"net": r["net"], "size": r["size"],
                                                                        "preset": r["preset"]})
        row[r["method"]] = r[f"{clock}_median"]
    for r in memory:
        key = (r["net"], tuple(r["size"]), r["preset"])
        rows.setdefault(key, {"net": r["net"], "size": r["size"], "preset": r["preset"]})[f"mem_{r['method']}"] = \
            r["peak_mb"]

    def f(v, fmt="{:.2f}"):
        return fmt.format(v) if v is not None else "–"

    out = ["| network | input | preset | forward s | ours s | zennit s | ours/fwd | ours/zennit | "
           "peak MB fwd / ours / zennit | targets |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows.values():
        fwd, ours, zen = row.get("forward"), row.get("ours"), row.get("zennit")
        mem = " / ".join(f(row.get(f"mem_{m}"), "{:.0f}") for m in METHODS)
        out.append(f"| {NETS[row['net']][0]} | {'×'.join(map(str, row['size']))} | {preset_label(row['preset'])} | "
                   f"{f(fwd)} | {f(ours)} | {f(zen)} | {f(ours / fwd if fwd and ours else None)} | "
                   f"{f(ours / zen if zen and ours else None)} | {mem} | {verdict(row)} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", default=",".join(NETS), help=f"subset of {','.join(NETS)}")
    p.add_argument("--rows", default=None, help="rows in this order, e.g. resnet18:96x112x96,preact:160x192x160 "
                                                "(default: every row of --nets)")
    p.add_argument("--presets", default="eps,epsilon-plus,alpha1-beta0", help="eps (= None), epsilon-plus, …")
    p.add_argument("--quick", action="store_true", help="half-size inputs (minutes, not hours)")
    p.add_argument("--runs", type=int, default=3, help="timed rounds (median reported, ≥ 3)")
    p.add_argument("--no-zennit", action="store_true", help="skip zennit")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--json", default=None, help="write every raw figure to this file")
    p.add_argument("--profile", default=None, help="profile our LRP on this network instead")
    p.add_argument("--child-time", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-memory", nargs=4, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    presets = [None if q in ("eps", "none", "None") else q for q in args.presets.split(",") if q]
    methods = [m for m in METHODS if not (m == "zennit" and args.no_zennit)]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child_time:
        net, size = args.child_time[0], tuple(int(v) for v in args.child_time[1].split("x"))
        print(json.dumps(time_row(net, size, presets, methods, args.runs, args.device)))
        return 0
    if args.child_memory:
        net, size, preset, method = args.child_memory
        print(json.dumps(peak_memory(net, tuple(int(v) for v in size.split("x")),
                                     None if preset == "eps" else preset, method, args.device)))
        return 0
    nets = [n for n in args.nets.split(",") if n]
    chosen = ROWS if args.rows is None else [(n, tuple(int(v) for v in shape.split("x")))
                                             for n, shape in (r.split(":") for r in args.rows.split(",") if r)]
    rows = [(n, s if not args.quick else tuple(max(16, v // 4 * 2) for v in s)) for n, s in chosen if n in nets]
    if args.profile:
        from bench_profile import profile

        profile(args.profile, next(s for n, s in rows if n == args.profile), presets[0], args.device)
        return 0
    if args.runs < 3:
        print("note: fewer than 3 runs: the medians are not the issue's figure", file=sys.stderr)
    results: list[dict] = []
    memory: list[dict] = []
    for net, size in rows:
        shape = "x".join(map(str, size))
        print(f"{net} {shape}: timing {', '.join(methods)} × {len(presets)} presets, load {os.getloadavg()[0]:.1f}",
              flush=True)
        flags = ["--presets", args.presets, "--runs", str(args.runs)] + (["--no-zennit"] if args.no_zennit else [])
        results += _child(args, ["--child-time", net, shape] + flags)
        if not args.no_memory:
            for preset in presets:
                for method in methods:
                    if method == "forward" and preset != presets[0]:
                        continue  # the forward pass does not depend on the preset
                    got = _child(args, ["--child-memory", net, shape, preset or "eps", method])
                    memory += [got] if got else []
            fwd = next((m for m in memory if m["net"] == net and m["method"] == "forward"
                        and m["size"] == list(size)), None)
            if fwd:
                memory += [dict(fwd, preset=q) for q in presets[1:]]
        if (net, size) != rows[-1]:  # the tables so far (a long run may be cut short); the last: below, once
            print("so far, CPU time:\n" + table(results, memory), flush=True)
            print("so far, wall time:\n" + table(results, memory, "wall"), flush=True)
    print()
    print("CPU time (process, all threads):")
    print(table(results, memory, "cpu"))
    print()
    print("Wall time:")
    print(table(results, memory, "wall"))
    if args.json:
        Path(args.json).write_text(json.dumps({"timing": results, "memory": memory}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
