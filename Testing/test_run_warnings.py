"""A run's conservation warning points at the user's call, and a map the run refuses prints none first.

``jobs.compute`` refuses an LRP map without substance (``jobs.check_substance``: the scan outside the model's
field of view, a dead network). The engine's ``ConservationWarning`` used to come first, at the caller's line,
with advice (another target, float64, the epsilon preset) that contradicted the refusal which followed. The run
now holds the engine's warnings until the map is accepted: a refused map prints only the refusal; an accepted
map with a warning prints it once, at the line of the user's call.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.engine import ConservationWarning
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.selftest import make_test_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
pytest.importorskip("slicer")
ROOT = Path(__file__).resolve().parents[1]


def _scan(scene):
    k, j, i = np.mgrid[:12, :14, :16]
    return mrml.array_to_volume(scene, (i * j + k).astype(np.float32),
                                Grid.from_parts((12, 14, 16), (2.0, 2.0, 2.0), (0, 0, 0)), "scan")


def _dead(loaded):
    dead = copy.copy(loaded)
    dead.model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for p in dead.model.parameters():
            p.zero_()
    return dead


def test_a_refused_map_prints_the_refusal_only(scene, tmp_path):
    dead = _dead(load_model(make_test_model(tmp_path), device="cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="no relevance"):
            RelevanceLogic(scene).run([_scan(scene)], dead, preset="epsilon-plus")
    assert not [w for w in caught if issubclass(w.category, ConservationWarning)], [str(w.message) for w in caught]


def test_an_accepted_map_warns_once_at_the_callers_line(scene, tmp_path):
    """The self-test network keeps under 1 % of its logit (biases absorb it): the map is kept (above the run's
    0.1 % floor) and the engine's warning is given once, at this file's line."""
    loaded = load_model(make_test_model(tmp_path), device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = RelevanceLogic(scene).run([_scan(scene)], loaded)
    found = [w for w in caught if issubclass(w.category, ConservationWarning)]
    assert run.node.GetScene() is scene
    assert len(found) == 1, [str(w.message) for w in found]
    assert Path(found[0].filename).resolve() == Path(__file__).resolve(), found[0].filename


def test_python_c_prints_the_refusal_without_a_warning_first(tmp_path):
    """As a user types it: ``python -c`` with a dead network; stderr holds the refusal and no warning."""
    code = f"""
import copy, torch, numpy as np, slicer
from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.selftest import make_test_model
from pathlib import Path
torch.set_num_threads(1)
loaded = load_model(make_test_model(Path({str(tmp_path)!r})), device="cpu")
with torch.no_grad():
    for p in loaded.model.parameters():
        p.zero_()
scene = slicer.vtkMRMLScene()
k, j, i = np.mgrid[:12, :14, :16]
volume = mrml.array_to_volume(scene, (i * j + k).astype(np.float32),
                              Grid.from_parts((12, 14, 16), (2.0, 2.0, 2.0), (0, 0, 0)), "scan")
RelevanceLogic(scene).run([volume], loaded, preset="epsilon-plus")
"""
    env = {"PYTHONPATH": str(ROOT / "NeuroRelevance"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and "no relevance in it" in done.stderr, done.stderr[-2000:]
    assert "ConservationWarning" not in done.stderr, done.stderr[-2000:]
