"""The CPU-safe parts of benchmarks/bench_gpu.py and bench_engine.py's table: the script refuses clearly without
CUDA, its heatmap code runs end to end (here on the CPU at tiny sizes), and the target checks mark rows right."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
pytest.importorskip("monai")

import bench_engine  # noqa: E402
import bench_gpu  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_2():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")], capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT / "NeuroRelevance"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr


@pytest.mark.parametrize("net, size", [("preact", (16, 16, 16)), ("densenet121", (32, 32, 32))])
def test_heatmap_runs_end_to_end_on_cpu(net, size):
    result = bench_gpu.heatmap(net, size, torch.device("cpu"), runs=1)
    assert result["median_s"] > 0 and result["forward_s"] > 0 and result["peak_mb"] is None
    assert "reproduced model(x)" in result["graph_check"]
    line = bench_gpu.heatmap_lines([result]).splitlines()[-1]
    assert line.startswith(f"| {net} | {'×'.join(map(str, size))} | cpu |")


def _row(preset, fwd, ours, zen, mf, mo, mz):
    timing = [{"net": "preact", "size": [8, 8, 8], "preset": preset, "method": m, "cpu_median": v, "wall_median": v}
              for m, v in (("forward", fwd), ("ours", ours), ("zennit", zen))]
    memory = [{"net": "preact", "size": [8, 8, 8], "preset": preset, "method": m, "peak_mb": v}
              for m, v in (("forward", mf), ("ours", mo), ("zennit", mz))]
    return bench_engine.table(timing, memory).splitlines()[-1]


def test_table_marks_each_target():
    met = _row("epsilon-plus", 1.0, 2.4, 5.0, 100, 240, 300)
    assert "✓ ≤2.5×fwd" in met and "✓ ≤0.5×zennit" in met and "✓ mem ≤2.5×fwd" in met and "✓ mem ≤zennit" in met
    missed = _row(None, 1.0, 2.1, 4.0, 100, 260, 250)
    assert "✗ ≤2.0×fwd" in missed and "✗ ≤0.5×zennit" in missed and "✗ mem ≤2.5×fwd" in missed
    assert "✗ mem ≤zennit" in missed and "| 2.10 | 0.53 |" in missed
