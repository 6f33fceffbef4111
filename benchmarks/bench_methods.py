"""Benchmark: every explanation method and the region-perturbation curve against one forward pass.

Model: the seed-003 ``PreActResNet3d()`` (3.66 M parameters) in eval mode with non-trivial BatchNorm
statistics, one input of the given size. Each method runs once untimed (warm-up) and ``--runs`` times timed;
the median wall and process CPU time are reported, divided by those of one forward (no grad). The
perturbation curve (20 steps, voxels, most relevant first, no random reference) runs 21 forwards in batches;
the issue's target is ≤ 25 forwards' time.

    python benchmarks/bench_methods.py --quick             # 48x56x48
    python benchmarks/bench_methods.py                     # 96x112x96 (minutes on a 2-core CPU)
    python benchmarks/bench_methods.py --methods gradient,gradcam --runs 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ALL = ("gradient", "gradient_x_input", "guided_backprop", "gradcam", "gradcam++", "guided_gradcam", "lrp",
       "smoothgrad", "integrated_gradients", "summary", "perturbation")
OPTIONS = {"smoothgrad": {"samples": 25}, "integrated_gradients": {"steps": 64}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="96x112x96")
    p.add_argument("--quick", action="store_true", help="48x56x48")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--methods", default=",".join(ALL))
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=8, help="perturbed inputs per forward")
    p.add_argument("--ig-steps", type=int, default=64, help="integrated-gradients steps")
    p.add_argument("--sg-samples", type=int, default=25, help="SmoothGrad samples")
    args = p.parse_args(argv)
    import torch
    from bench_engine import _build

    from NeuroRelevanceLib import explain
    from NeuroRelevanceLib.device import resolve_device
    from NeuroRelevanceLib.metrics import region_perturbation

    OPTIONS["integrated_gradients"]["steps"] = args.ig_steps
    OPTIONS["smoothgrad"]["samples"] = args.sg_samples
    size = (48, 56, 48) if args.quick else tuple(int(v) for v in args.size.split("x"))
    device = resolve_device(args.device)
    model, x = _build(size, device)
    model.eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(fn):
        fn()
        sync()
        walls, cpus = [], []
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        return statistics.median(walls), statistics.median(cpus)

    def forward():
        with torch.no_grad():
            model(x)

    f_wall, f_cpu = timed(forward)
    rel = explain(model, x, "gradient_x_input", device=device).relevance
    print(f"# {'x'.join(map(str, size))} on {device}, {torch.get_num_threads()} threads; forward {f_wall:.3f} s "
          f"wall, {f_cpu:.3f} s CPU")
    print("| method | wall s | CPU s | wall / forward | CPU / forward |\n|---|---|---|---|---|")
    print(f"| forward | {f_wall:.3f} | {f_cpu:.3f} | 1.00 | 1.00 |", flush=True)
    for m in args.methods.split(","):
        if m == "perturbation":
            fn = lambda: region_perturbation(model, x, rel, steps=20, random_repeats=0,  # noqa: E731
                                             batch_size=args.batch_size, device=device)
            label = f"perturbation curve, 20 steps (batch {args.batch_size})"
        else:
            fn = lambda m=m: explain(model, x, m, device=device, **OPTIONS.get(m, {}))  # noqa: E731
            label = m + "".join(f", {k}={v}" for k, v in OPTIONS.get(m, {}).items())
        w, c = timed(fn)
        print(f"| {label} | {w:.3f} | {c:.3f} | {w / f_wall:.2f} | {c / f_cpu:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
