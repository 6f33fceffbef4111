"""Benchmark the cohort decomposition (issue 7): one fit against tensorly's non_negative_tucker_hals
at equal ranks and iterations (time, peak memory, final error), and the whole rank grid.

    .venv/bin/python benchmarks/bench_cohort.py                       # n=200, c=128, v=2000, float32
    .venv/bin/python benchmarks/bench_cohort.py --c 64 --v 1000 --no-grid

Peak memory: each fit runs in a fresh subprocess that loads the tensor from a .npy file; the
peak resident set (VmHWM, reset through /proc/self/clear_refs after loading) minus the resident
set after loading is reported (CUDA: torch.cuda.max_memory_allocated minus the tensor).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "NeuroRelevance"))

CHILD = r"""
import json, sys, time
import numpy as np, torch, tensorly as tl
path, which, r1, r2, iters, device, dtype = sys.argv[1:8]
r1, r2, iters = int(r1), int(r2), int(iters)
dt = getattr(torch, dtype)
dev = torch.device(device)
a = torch.from_numpy(np.load(path)).to(device=dev, dtype=dt)
import scipy.linalg, scipy.optimize
from NeuroRelevanceLib.cohort import constrained_nn_tucker
small = a[:12, :6, :50].clone()  # warm-up: lazy imports and allocator pools outside the measurement
constrained_nn_tucker(small, (2, 2), n_iter_max=2, device=dev)
with tl.backend_context("pytorch", local_threadsafe=True):
    tl.decomposition.non_negative_tucker_hals(small, rank=[2, 2, 2], n_iter_max=2)
del small
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0
try:
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
base = rss("VmRSS:")
if dev.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); gbase = torch.cuda.memory_allocated()
t = time.perf_counter()
if which == "ours":
    fit = constrained_nn_tucker(a, (r1, r2), n_iter_max=iters, tol=0, device=dev)
    err, n_done = fit.errors[-1], fit.n_iter
else:
    with tl.backend_context("pytorch", local_threadsafe=True):
        core, factors = tl.decomposition.non_negative_tucker_hals(a, rank=[r1, r2, r1], n_iter_max=iters,
                                                                  tol=0, init="svd")
        err = float(torch.linalg.vector_norm(a - tl.tucker_to_tensor((core, factors))) / torch.linalg.vector_norm(a))
        n_done = iters
if dev.type == "cuda":
    torch.cuda.synchronize()
secs = time.perf_counter() - t
peak = (torch.cuda.max_memory_allocated() - gbase) if dev.type == "cuda" else rss("VmHWM:") - base
print(json.dumps({"which": which, "seconds": secs, "peak_bytes": peak, "error": float(err), "iterations": n_done}))
"""


def run_child(npy: Path, which: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "NeuroRelevance"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(npy), which, str(args.ranks[0]), str(args.ranks[1]),
                          str(args.iters), args.device, args.dtype], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--c", type=int, default=128)
    p.add_argument("--v", type=int, default=2000, help="layer voxels (grid 10 × 10 × v/100)")
    p.add_argument("--ranks", type=int, nargs=2, default=(7, 4))
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="auto")
    p.add_argument("--no-grid", action="store_true")
    p.add_argument("--grid-iters", type=int, default=100)
    p.add_argument("--solvers", nargs="+", default=["ours", "tensorly"], choices=["ours", "tensorly"],
                   help="which single fits to time (none: --solvers with --grid-only)")
    p.add_argument("--grid-only", action="store_true", help="skip the single-fit comparison")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from NeuroRelevanceLib.cohort import rank_grid, split_indices
    from NeuroRelevanceLib.cohort.device import resolve_device
    from NeuroRelevanceLib.cohort.synthetic import synthetic_tensor

    args.device = str(resolve_device(args.device))
    shape = (10, 10, max(args.v // 100, 1))
    syn = synthetic_tensor(n=args.n, c=args.c, layer_shape=shape, r1=6, r2=4, noise=0.1, seed=0)
    tensor = syn.tensor.astype(np.float32 if args.dtype == "float32" else np.float64)
    del syn
    print(f"tensor {tensor.shape} ({tensor.nbytes / 2**20:.0f} MiB, {args.dtype}) on {args.device}; "
          f"ranks (R1, R2) = {tuple(args.ranks)}, {args.iters} iterations; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    results = {"shape": list(tensor.shape), "dtype": args.dtype, "device": args.device,
               "ranks": list(args.ranks), "iterations": args.iters, "load_avg": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "a.npy"
        np.save(npy, tensor)
        fits = {} if args.grid_only else {w: run_child(npy, w, args) for w in args.solvers}
    results["fit"] = fits
    names = {"ours": "constrained (ours, eq. 2)", "tensorly": "tensorly non_negative_tucker_hals"}
    print("\n| solver | time per fit (s) | s / iteration | peak extra memory (MiB) | final rel. error |")
    print("|---|---|---|---|---|")
    for key, r in fits.items():
        print(f"| {names[key]} | {r['seconds']:.1f} | {r['seconds'] / r['iterations']:.3f} | "
              f"{r['peak_bytes'] / 2**20:.0f} | {r['error']:.4f} |")
    if len(fits) == 2:
        results["time_ratio"] = fits["ours"]["seconds"] / fits["tensorly"]["seconds"]
        print(f"\ntime ratio ours / tensorly = {results['time_ratio']:.2f} (target ≤ 1.0)", flush=True)

    if not args.no_grid:
        y = np.arange(args.n, dtype=float)
        ix = split_indices(y, (0.6, 0.2, 0.2), seed=0)
        a = torch.as_tensor(tensor)
        import resource

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        grid = rank_grid(a[ix["train"]], a[ix["val"]], range(2, 11), range(2, 11), n_iter_max=args.grid_iters,
                         tol=1e-6, device=args.device)
        secs = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        print(f"\nrank grid 2..10 × 2..10 on {len(ix['train'])} training / {len(ix['val'])} validation "
              f"subjects: {secs:.0f} s ({secs / 60:.1f} min; target < 5 min), {int(grid.iterations.sum())} "
              f"sweeps in all, {cpu:.0f} CPU-s, load {os.getloadavg()[0]:.1f}; suggested (R1, R2) = "
              f"{grid.suggested} (true 6, 4)")
        results["grid"] = {"seconds": secs, "sweeps": int(grid.iterations.sum()),
                           "suggested": list(grid.suggested), "n_train": len(ix["train"]),
                           "cpu_seconds": cpu}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
