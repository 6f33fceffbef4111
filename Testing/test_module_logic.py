"""The Slicer module's Logic on a real scene.

Only the Slicer desktop app cannot exist here: ``slicer.ScriptedLoadableModule`` and
``slicer.parameterNodeWrapper`` come from the app, so minimal stand-ins for those two are
registered, and the real module file is imported and run against a real vtkMRMLScene.
"""
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import slicer

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError

MODULE_FILE = Path(__file__).resolve().parents[1] / "NeuroRelevance" / "NeuroRelevance.py"


@pytest.fixture(scope="module")
def module():
    stand_ins = {}
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget",
                 "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (), {"__init__": lambda self, *a: None}))
    stand_ins["slicer.ScriptedLoadableModule"] = scripted
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    wrapper.WithinRange = lambda lo, hi: (lo, hi)
    stand_ins["slicer.parameterNodeWrapper"] = wrapper
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


def test_logic_adds_overlay_on_the_given_scene(module, scene, views, grid):
    k, j, i = np.mgrid[:7, :9, :11]
    volume = mrml.array_to_volume(scene, (i * j + k).astype(np.float32), grid, "scan")
    output = module.NeuroRelevanceLogic(scene).process(volume, opacity=0.3)
    values, out_grid = mrml.volume_to_array(output)
    assert out_grid.same_as(grid) and np.isclose(np.abs(values).max(), 1.0)
    composite = scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() == output.GetID()
    assert composite.GetForegroundOpacity() == pytest.approx(0.3)


def test_logic_refuses_missing_input_without_touching_the_scene(module, scene):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="Select an input volume"):
        module.NeuroRelevanceLogic(scene).process(None)
    with pytest.raises(InputError, match="Opacity"):
        volume = mrml.array_to_volume(scene, np.ones((4, 4, 4)), _grid(), "v")
        before = scene.GetNumberOfNodes()
        module.NeuroRelevanceLogic(scene).process(volume, opacity=3.0)
    assert scene.GetNumberOfNodes() == before


def _grid():
    from NeuroRelevanceLib.geometry import Grid

    return Grid.from_parts((4, 4, 4), (1, 1, 1), (0, 0, 0))
