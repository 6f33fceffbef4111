"""NeuroRelevance: relevance heatmaps of 3D brain networks as overlays on the scan.

Glue only (loads the .ui, binds widgets to a parameter node, calls the logic, shows errors).
Everything testable lives in ``NeuroRelevanceLib`` next to this file, which imports neither Qt
nor the Slicer app:

- ``NeuroRelevanceLib/logic.py``    scene-level workflow used by this module and the CLI
- ``NeuroRelevanceLib/mrml/``       volume nodes <-> numpy, outputs, display, storage, tables
- ``NeuroRelevanceLib/engine/``     relevance propagation on the model's operator graph
- ``NeuroRelevanceLib/regions/``    atlas region statistics
- ``NeuroRelevanceLib/cohort/``     dataset-level Tucker decomposition
"""
from __future__ import annotations

import logging
from typing import Annotated

import slicer
import vtk
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.util import VTKObservationMixin

from NeuroRelevanceLib.errors import InputError


class NeuroRelevance(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "NeuroRelevance"
        self.parent.categories = ["Neuroimaging"]
        self.parent.dependencies = []
        self.parent.contributors = ["NeuroRelevance developers"]
        self.parent.helpText = (
            "Explains what a trained 3D neural network sees in a brain scan: relevance heatmaps "
            "(layer-wise relevance propagation and related methods) as overlays, with per-region "
            "statistics. See the README for the scripting API.")
        self.parent.acknowledgementText = (
            "Methods follow Deep Taylor decomposition, LRP for 3D U-Nets (pass/clamp filters), "
            "and LRP for Alzheimer's disease (atlas relevance density and gain).")


@parameterNodeWrapper
class NeuroRelevanceParameterNode:
    """Settings saved with the scene."""

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputVolume: slicer.vtkMRMLScalarVolumeNode
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    threshold: Annotated[float, WithinRange(0.0, 0.99)] = 0.0
    positiveOnly: bool = False


class NeuroRelevanceWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Loads the .ui, binds it to the parameter node and calls the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        ensureDependencies()
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/NeuroRelevance.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = NeuroRelevanceLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = ("Compute and show the relevance overlay" if ready
                                       else "Select an input volume")

    def onApplyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to compute the relevance map.",
                                             waitCursor=True):
            p = self._parameterNode
            output = self.logic.process(p.inputVolume, opacity=p.opacity, threshold=p.threshold,
                                        positiveOnly=p.positiveOnly)
            p.outputVolume = output
            self.ui.statusLabel.text = f"Output: {output.GetName()}"


def ensureDependencies() -> None:
    """Offer to pip-install the library's missing packages (torch comes from the PyTorch extension)."""
    from NeuroRelevanceLib.dependencies import missing_packages

    missing = missing_packages()
    if missing and slicer.util.confirmOkCancelDisplay(
            "NeuroRelevance needs these Python packages: " + ", ".join(missing) + ". Install now?"):
        slicer.util.pip_install(" ".join(missing))


class NeuroRelevanceLogic(ScriptedLoadableModuleLogic):
    """Thin adapter: hands the scene to ``NeuroRelevanceLib.logic.RelevanceLogic``."""

    def __init__(self, scene=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.scene = scene

    def getParameterNode(self):
        return NeuroRelevanceParameterNode(super().getParameterNode())

    def process(self, inputVolume, opacity: float = 0.5, threshold: float = 0.0,
                positiveOnly: bool = False):
        """Add a relevance overlay for ``inputVolume`` and return the new output volume node.

        Until the model inputs are wired (next issue), the map is the skeleton's heatmap-like
        Laplacian-of-Gaussian, so the whole path (scene -> numpy -> output node -> overlay) runs.
        """
        from NeuroRelevanceLib import mrml
        from NeuroRelevanceLib.logic import RelevanceLogic
        from NeuroRelevanceLib.smoke import heatmap_like

        if inputVolume is None:
            raise InputError("Select an input volume.")
        scene = self.scene or slicer.mrmlScene
        array, grid = mrml.volume_to_array(inputVolume)
        logging.info("NeuroRelevance: processing %s", inputVolume.GetName())
        output = RelevanceLogic(scene).add_heatmap(
            inputVolume, heatmap_like(array, grid), "smoke LoG", opacity=opacity,
            threshold=threshold, positive_only=positiveOnly)
        return output.node


class NeuroRelevanceTest(ScriptedLoadableModuleTest):
    """Self-test run by Slicer (``Reload and Test``): builds its own data and checks numbers."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_overlay_on_synthetic_volume()

    def test_overlay_on_synthetic_volume(self) -> None:
        import numpy as np

        from NeuroRelevanceLib import mrml
        from NeuroRelevanceLib.geometry import Grid

        grid = Grid.from_parts((24, 32, 32), (1.5, 1.0, 1.0), (-16.0, -16.0, -18.0))
        k, j, i = np.mgrid[:24, :32, :32]
        blob = np.exp(-((i - 16) ** 2 + (j - 16) ** 2 + (k - 12) ** 2) / 40.0) * 1000
        volume = mrml.array_to_volume(slicer.mrmlScene, blob.astype(np.float32), grid, "blob")
        output = NeuroRelevanceLogic().process(volume, opacity=0.4)
        values, out_grid = mrml.volume_to_array(output)
        self.assertTrue(out_grid.same_as(grid))
        self.assertAlmostEqual(float(np.abs(values).max()), 1.0, places=5)
        self.assertEqual(output.GetNodeReference("NeuroRelevance.source"), volume)
        self.delayDisplay("NeuroRelevance self-test passed")
