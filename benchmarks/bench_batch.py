"""Batch explanation throughput: subjects per minute in this process, on 1 and on 2 Dask worker processes.

    python benchmarks/bench_batch.py [--subjects 40] [--spacing 2] [--folder /tmp/nr-bench-batch]

Explains a synthetic demo cohort (``demo.generate_cohort``, written once and reused) with the bundled
AD model and its recommended preset, a DesikanKilliany region table and the labelled PNG of every
subject (what ``neurorelevance explain`` does by default). Each mode runs in a fresh process and a
fresh output folder, so memory and warm-up are its own:

- ``in-process``: the default, no cluster;
- ``workers-1`` / ``workers-2``: ``--workers N`` (a LocalCluster of N single-threaded processes).

Printed per mode: wall time of ``explain_cohort`` (worker start-up and the first model load
included; the LocalCluster's own start is timed apart), subjects per minute, and the peak resident
memory of each process that explained subjects. Then the command line's start-up: ``--help``,
``explain --help``, an argument error and ``--version`` (median of 5 runs, no torch imported).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ATLAS = "DesikanKilliany"
MODES = ("in-process", "workers-1", "workers-2")


def generate(folder: Path, n: int, spacing: float) -> Path:
    """The cohort table (id, path, group, age), generated once per size and spacing."""
    import pandas as pd

    from NeuroRelevanceLib.demo import generate_cohort

    cohort = folder / f"cohort-{n}-{spacing:g}mm"
    table = cohort / "cohort.csv"
    if not table.is_file():
        started = time.perf_counter()
        manifest = generate_cohort(cohort, n, spacing=spacing, seed=0, overwrite=True)
        pd.DataFrame({"id": manifest["subject_id"], "path": [str(cohort / p) for p in manifest["image"]],
                      "group": manifest["diagnosis"], "age": manifest["age"]}).to_csv(table, index=False)
        print(f"generated {n} subjects at {spacing:g} mm in {time.perf_counter() - started:.0f} s", flush=True)
    return table


def run_mode(mode: str, table: Path, out: Path) -> dict:
    """One mode, in this (fresh) process; returns the figures."""
    import shutil

    from NeuroRelevanceLib.batch import DaskExecutor, explain_cohort
    from NeuroRelevanceLib.pretrained import model_card_path

    shutil.rmtree(out, ignore_errors=True)
    executor, cluster_seconds = None, 0.0
    if mode != "in-process":
        started = time.perf_counter()
        executor = DaskExecutor(workers=int(mode.split("-")[1]))
        cluster_seconds = time.perf_counter() - started
    started = time.perf_counter()
    try:
        result = explain_cohort(table, model_card_path("ad_cnn"), out, atlases=(ATLAS,), min_overlap=0.2,
                                reference_group="control", target="AD", executor=executor, device="cpu")
    finally:
        if executor is not None:
            executor.close()
    seconds = time.perf_counter() - started
    subjects = result.subjects
    done = int((subjects["status"] == "done").sum())
    peaks = subjects.groupby("worker")["peak_rss_mib"].max()
    return {"mode": mode, "done": done, "failed": int((subjects["status"] == "failed").sum()),
            "seconds": round(seconds, 1), "cluster_start_seconds": round(cluster_seconds, 1),
            "subjects_per_minute": round(done / seconds * 60.0, 1),
            "median_subject_seconds": round(float(subjects["seconds"].median()), 2),
            "peak_rss_mib_per_worker": {k: float(v) for k, v in peaks.items()}}


def cli_startup() -> dict:
    """Median wall time of the command line's light paths (fresh interpreter each time)."""
    cases = {"--help": ["--help"], "explain --help": ["explain", "--help"],
             "argument error": ["explain", "--workers", "two"], "--version": ["--version"]}
    times = {}
    for name, argv in cases.items():
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "NeuroRelevanceLib", *argv], capture_output=True, check=False)
            runs.append(time.perf_counter() - started)
        times[name] = round(statistics.median(runs), 3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--folder", default="/tmp/nr-bench-batch")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)   # internal: one mode in this process
    args = parser.parse_args()
    folder = Path(args.folder)
    if args.run:
        table = generate(folder, args.subjects, args.spacing)
        print("RESULT " + json.dumps(run_mode(args.run, table, folder / f"out-{args.run}")))
        return
    folder.mkdir(parents=True, exist_ok=True)
    generate(folder, args.subjects, args.spacing)
    print(f"{args.subjects} demo subjects at {args.spacing:g} mm, model ad_cnn (alpha1-beta0), atlas {ATLAS}, "
          "PNG per subject")
    for mode in args.modes:
        done = subprocess.run([sys.executable, __file__, "--run", mode, "--subjects", str(args.subjects),
                               "--spacing", str(args.spacing), "--folder", str(folder)],
                              capture_output=True, text=True, encoding="utf-8", check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(f"{mode}: failed\n{done.stderr[-2000:]}")
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        peaks = ", ".join(f"{v:.0f}" for v in r["peak_rss_mib_per_worker"].values())
        print(f"{mode:11s} {r['subjects_per_minute']:6.1f} subjects/min  ({r['done']} done, {r['failed']} failed "
              f"in {r['seconds']:.1f} s; cluster start {r['cluster_start_seconds']:.1f} s; median subject "
              f"{r['median_subject_seconds']:.2f} s; peak RSS per worker {peaks} MiB)", flush=True)
    print("command line start-up (median of 5, s):", json.dumps(cli_startup()))


if __name__ == "__main__":
    main()
