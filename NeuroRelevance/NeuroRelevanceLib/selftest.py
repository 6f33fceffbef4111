"""The end-to-end case the Slicer module's self-test runs (and pytest runs too, on slicer-core).

It builds its own data: a small network saved with a model card, and a synthetic scan on an
anisotropic grid. It then runs the scene logic and checks the numbers it can know in advance.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np


def make_test_model(folder: Path) -> Path:
    """Save a small 1-channel classifier with its model card in ``folder``; return the card path."""
    from .models import save_weights
    from .nets import build, spec

    net = build("DeepTaylorCNN", seed=0, in_channels=1, n_outputs=2, channels=(4, 8))
    save_weights(net, folder / "net.safetensors")
    card = {"name": "self-test", "architecture": spec(net), "weights": "net.safetensors",
            "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [2, 2, 2],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "recommended_preset": "alpha1-beta0"}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def run_self_test(logic) -> None:
    """Run one scan through ``logic`` (a RelevanceLogic on some scene); raise AssertionError if wrong."""
    with tempfile.TemporaryDirectory(prefix="neurorelevance-selftest-") as folder:
        _run_case(logic, make_test_model(Path(folder)))


def _run_case(logic, card: Path) -> None:
    from . import mrml
    from .geometry import Grid

    grid = Grid.from_parts((20, 24, 24), (1.5, 1.2, 1.8), (-18.0, -15.0, -16.0))
    k, j, i = np.mgrid[:20, :24, :24]
    scan = (100 + 40 * np.sin(i / 3.0) + 20 * np.cos(j / 4.0) + k).astype(np.float32)
    volume = mrml.array_to_volume(logic.scene, scan, grid, "scan")
    run = logic.run([volume], str(card), preset="alpha1-beta0")
    values, out_grid = mrml.volume_to_array(run.node)
    assert out_grid.same_as(grid), "the output is not on the scan's grid"
    assert float(values.min()) >= -1e-6, "α1β0 relevance must be non-negative"
    assert float(values.max()) > 0, "the relevance map is empty"
    assert run.node.GetNodeReference("NeuroRelevance.source") is volume
    assert run.node.GetName() == f"scan · LRP alpha1-beta0 · {run.job.label}"
    after_first = logic.scene.GetNumberOfNodes()
    again = logic.run([volume], str(card), preset="alpha1-beta0")
    assert logic.scene.GetNumberOfNodes() == after_first, "a re-run must not add nodes"
    assert logic.scene.GetNodeByID(run.node.GetID()) is None, "a re-run must replace its nodes"
    assert again.node.GetScene() is logic.scene
