"""The Slicer module file on a real scene.

Only the Slicer desktop app cannot exist here: ``qt``, ``slicer.ScriptedLoadableModule`` and
``slicer.parameterNodeWrapper`` come from the app, so minimal stand-ins for those are registered,
then the real module file is imported and its Logic and self-test run against a real vtkMRMLScene.
"""
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.selftest import make_test_model, run_self_test

MODULE_FILE = Path(__file__).resolve().parents[1] / "NeuroRelevance" / "NeuroRelevance.py"


def _stand_ins() -> dict:
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget",
                 "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (), {"__init__": lambda self, *a: None}))
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    wrapper.WithinRange = lambda lo, hi: (lo, hi)
    wrapper.Choice = lambda values: tuple(values)
    qt = types.ModuleType("qt")
    qt.QTimer = type("QTimer", (), {"__init__": lambda self: None,
                                    "setInterval": lambda self, ms: None,
                                    "connect": lambda self, *a: None})
    return {"slicer.ScriptedLoadableModule": scripted, "slicer.parameterNodeWrapper": wrapper,
            "qt": qt}


@pytest.fixture(scope="module")
def module():
    stand_ins = _stand_ins()
    saved = {k: sys.modules.get(k) for k in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location("NeuroRelevanceModule", MODULE_FILE)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        yield loaded
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


def test_module_logic_runs_the_library_on_the_given_scene(module, scene, views, tmp_path):
    logic = module.NeuroRelevanceLogic(scene)
    grid = mrml.volume_grid(mrml.array_to_volume(scene, np.ones((6, 6, 6), np.float32),
                                                 _grid(), "tiny"))
    assert grid.shape_kji == (6, 6, 6)
    k, j, i = np.mgrid[:12, :14, :16]
    volume = mrml.array_to_volume(scene, (i * j + k).astype(np.float32),
                                  _grid((12, 14, 16)), "scan")
    run = logic.run([volume], str(make_test_model(tmp_path)), opacity=0.3)
    composite = scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() == run.node.GetID()
    assert composite.GetForegroundOpacity() == pytest.approx(0.3)


def test_module_self_test_case_passes_on_slicer_core(module, scene, views):
    run_self_test(module.NeuroRelevanceLogic(scene))


def test_module_logic_refuses_bad_input_without_touching_the_scene(module, scene, tmp_path):
    logic = module.NeuroRelevanceLogic(scene)
    card = str(make_test_model(tmp_path))
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="one input volume per model channel"):
        logic.run([None], card)
    with pytest.raises(InputError, match="Opacity"):
        logic.run([None], card, opacity=3.0)
    assert scene.GetNumberOfNodes() == before


def _grid(shape=(6, 6, 6)):
    from NeuroRelevanceLib.geometry import Grid

    return Grid.from_parts(shape, (2.0, 2.0, 2.0), (0, 0, 0))
