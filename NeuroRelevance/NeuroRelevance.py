"""NeuroRelevance: relevance heatmaps of 3D brain networks as overlays on the scan.

Glue only (loads the .ui, binds widgets to a parameter node, runs the library's logic off the GUI
thread, shows errors). Everything testable lives in ``NeuroRelevanceLib`` next to this file, which
imports neither Qt nor the Slicer app:

- ``NeuroRelevanceLib/logic.py``    scene workflow: prepare / compute / apply, refilter, tables
- ``NeuroRelevanceLib/jobs.py``     the thread-safe compute step (progress, cancel)
- ``NeuroRelevanceLib/background.py`` that step on a worker thread (start, progress, cancel, result)
- ``NeuroRelevanceLib/vocabulary.py`` every run option: range, choices, default, help
- ``NeuroRelevanceLib/models/``     model cards, safe loading
- ``NeuroRelevanceLib/mrml/``       volume nodes <-> numpy, outputs, display, storage, tables
- ``NeuroRelevanceLib/engine/``     relevance propagation on the model's operator graph
- ``NeuroRelevanceLib/regions/``    atlas region statistics
"""
from __future__ import annotations

import pathlib
from typing import Annotated

import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from NeuroRelevanceLib import panel
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.panel import NO_ATLAS, PREDICTED, PRESETS

# the parameter node's ranges, choices (which fill the combo boxes) and start values: NeuroRelevanceLib/vocabulary.py
from NeuroRelevanceLib.vocabulary import bounds as _bounds
from NeuroRelevanceLib.vocabulary import items as _items
from NeuroRelevanceLib.vocabulary import shown as _shown

CHANNELS = 4  # channel selectors in the .ui


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
            "(layer-wise relevance propagation) as overlays, with per-region statistics. "
            "See the README for the walkthrough and the scripting API.")
        self.parent.acknowledgementText = (
            "Methods follow Deep Taylor decomposition, LRP for 3D U-Nets (pass/clamp filters), "
            "and LRP for Alzheimer's disease (atlas relevance density and gain).")


@parameterNodeWrapper
class NeuroRelevanceParameterNode:
    """Every setting of the module, saved with the scene."""

    inputVolume0: slicer.vtkMRMLScalarVolumeNode
    inputVolume1: slicer.vtkMRMLScalarVolumeNode
    inputVolume2: slicer.vtkMRMLScalarVolumeNode
    inputVolume3: slicer.vtkMRMLScalarVolumeNode
    modelPath: pathlib.Path
    trusted: bool = False
    device: Annotated[str, Choice(_items("device"))] = _shown("device")
    preset: Annotated[str, Choice(PRESETS)] = _shown("preset")
    method: Annotated[str, Choice(_items("method"))] = _shown("method")
    epsilon: Annotated[float, WithinRange(*_bounds("epsilon"))] = _shown("epsilon")
    gamma: Annotated[float, WithinRange(*_bounds("gamma"))] = _shown("gamma")
    alpha: Annotated[float, WithinRange(*_bounds("alpha"))] = _shown("alpha")
    target: str = _shown("target")
    filterType: Annotated[str, Choice(_items("filter"))] = _shown("filter")
    filterLow: Annotated[float, WithinRange(*_bounds("filter_range"))] = _shown("filter_range")[0]
    filterHigh: Annotated[float, WithinRange(*_bounds("filter_range"))] = _shown("filter_range")[1]
    filterPlacement: Annotated[str, Choice(_items("filter_placement"))] = _shown("filter_placement")
    opacity: Annotated[float, WithinRange(*_bounds("opacity"))] = _shown("opacity")
    threshold: Annotated[float, WithinRange(*_bounds("threshold"))] = _shown("threshold")
    positiveOnly: bool = _shown("positive_only")
    atlasName: str = _shown("atlas")
    atlasNode: slicer.vtkMRMLLabelMapVolumeNode | slicer.vtkMRMLSegmentationNode | None
    outputVolume: slicer.vtkMRMLScalarVolumeNode


class NeuroRelevanceWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds the .ui to the parameter node; runs the heavy step on a worker thread."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._worker = None
        self._lastRun = None
        self._shownPreset = None
        self._shownDisplay = None
        self._status = ("", None)  # how the last Apply ended when it did not finish: (event, error)
        self._channels = 1
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.connect("timeout()", self._poll)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        if not slicer.app.testingEnabled():
            ensureDependencies()
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/NeuroRelevance.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = NeuroRelevanceLogic()
        self.ui.atlasComboBox.addItems([NO_ATLAS] + installedAtlases())
        self.ui.targetComboBox.addItem(PREDICTED)
        self.ui.atlasComboBox.connect("currentTextChanged(QString)", self.onAtlasNameChanged)
        self.ui.targetComboBox.connect("currentTextChanged(QString)", self.onTargetChanged)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.regionStatisticsButton.connect("clicked(bool)", self.onRegionStatisticsButton)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onModelChanged)
        self.ui.filterRangeWidget.connect("valuesChanged(double,double)", self.onFilterRangeChanged)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.cancel()
        self._timer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:
            self._job.cancel()
        self._lastRun = None
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume0:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume0 = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.ui.filterRangeWidget.setValues(self._parameterNode.filterLow, self._parameterNode.filterHigh)
            self.ui.atlasComboBox.setCurrentText(self._parameterNode.atlasName)
            self.ui.targetComboBox.setCurrentText(self._parameterNode.target)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)
            self._onParameterChanged()

    def _onParameterChanged(self, caller=None, event=None) -> None:
        p = self._parameterNode
        busy = self._worker is not None
        if p and p.preset != self._shownPreset:  # α follows the preset unless the user changes it
            self._shownPreset = p.preset
            alphas = panel.PRESET_ALPHA  # read from the preset registry now
            if p.preset in alphas:
                p.alpha = alphas[p.preset]
        if p:  # a control without effect with these choices is inactive (and not sent: panel.run_settings)
            active = panel.active_controls(p.method, p.preset, p.filterType)
            for name, widget in (("epsilon", self.ui.epsilonSpinBox), ("gamma", self.ui.gammaSpinBox),
                                 ("alpha", self.ui.alphaSpinBox), ("filter_range", self.ui.filterRangeWidget),
                                 ("filter_placement", self.ui.filterPlacementComboBox)):
                widget.enabled = name in active
        ready = bool(p and p.inputVolume0 and str(p.modelPath) not in ("", "."))
        self.ui.applyButton.enabled = ready and not busy
        self.ui.applyButton.toolTip = ("Compute and show the relevance overlay" if ready
                                       else "Select a model file and an input volume")
        if self._lastRun is not None and self._lastRun.node.GetScene() is None:
            self._lastRun = None  # its output was deleted
        self.ui.regionStatisticsButton.enabled = bool(self._lastRun) and not busy
        if p and not busy:  # what is shown, marked when the controls moved on; a failed Apply said here
            self.ui.resultsLabel.text = panel.results_text(
                self._lastRun, self._settings(), str(p.modelPath), self._volumes(), *self._status)
        display = self._displaySettings()
        if self._lastRun is not None and not busy and display != self._shownDisplay:
            self._shownDisplay = display
            self._refresh()

    def _displaySettings(self):
        """The settings a refresh from the cache depends on (None without a parameter node)."""
        p = self._parameterNode
        return p and (p.filterType, p.filterLow, p.filterHigh, p.opacity, p.threshold, p.positiveOnly)

    def _refresh(self) -> None:
        """Filter/threshold/opacity changes: update the overlay from the cached raw maps."""
        p = self._parameterNode
        kind = panel.display_filter(self._lastRun, p.filterType)
        with slicer.util.tryWithErrorDisplay("Could not update the overlay."):
            self.logic.refilter(self._lastRun, kind, (p.filterLow, p.filterHigh), opacity=p.opacity,
                                threshold=p.threshold, positive_only=p.positiveOnly)

    def onAtlasNameChanged(self, name: str) -> None:
        if self._parameterNode:
            self._parameterNode.atlasName = name or NO_ATLAS

    def onTargetChanged(self, name: str) -> None:
        if self._parameterNode:
            self._parameterNode.target = name or PREDICTED

    def onFilterRangeChanged(self, low: float, high: float) -> None:
        if self._parameterNode:
            with slicer.util.NodeModify(self._parameterNode):
                self._parameterNode.filterLow, self._parameterNode.filterHigh = low, high

    def onModelChanged(self, path: str) -> None:
        """Show what the model expects: channels (one selector each), classes, preset."""
        from NeuroRelevanceLib.models import read_card

        self.ui.modelInfoLabel.text = self.ui.intendedUseLabel.text = ""
        self.ui.targetComboBox.clear()
        self.ui.targetComboBox.addItem(PREDICTED)
        if not path.lower().endswith(".json"):
            return
        with slicer.util.tryWithErrorDisplay("Could not read the model card."):
            card = read_card(path)
            self._channels = min(len(card.input.channels), CHANNELS)
            for index in range(CHANNELS):
                selector = getattr(self.ui, f"inputSelector{index}")
                selector.enabled = index < len(card.input.channels)
                selector.toolTip = card.input.channels[index] if index < len(card.input.channels) else "unused"
            self.ui.targetComboBox.addItems(list(card.output.classes))
            self._parameterNode.preset = card.recommended_preset
            self.ui.modelInfoLabel.text = panel.card_summary(card)
            self.ui.modelInfoLabel.toolTip = panel.recommendation_details(card)   # the technical version
            self.ui.intendedUseLabel.text = panel.intended_use_text(card)  # ⚠ when the card states none
            self.ui.intendedUseLabel.styleSheet = "color: #b35900" if card.use_warning else ""

    def _settings(self) -> dict:
        p = self._parameterNode
        return panel.run_settings(
            method=p.method, preset=p.preset, target=p.target, filter_type=p.filterType,
            filter_low=p.filterLow, filter_high=p.filterHigh, filter_placement=p.filterPlacement,
            opacity=p.opacity, threshold=p.threshold, positive_only=p.positiveOnly,
            atlas=p.atlasNode or p.atlasName, epsilon=p.epsilon, gamma=p.gamma, alpha=p.alpha)

    def _volumes(self) -> list:
        return [getattr(self._parameterNode, f"inputVolume{i}") for i in range(self._channels)]

    def onApplyButton(self) -> None:
        from NeuroRelevanceLib.background import BackgroundRun

        p = self._parameterNode
        self._status = ("", None)
        with slicer.util.tryWithErrorDisplay("Could not start the relevance run.", waitCursor=True):
            try:
                self._job = self.logic.prepare(self._volumes(), str(p.modelPath), trusted=p.trusted,
                                               device=p.device, **self._settings())
            except Exception as exc:  # also said beside Apply, not only in the dialog
                self._status = ("failed", exc)
                self._onParameterChanged()
                raise
            self.ui.modelInfoLabel.text = self._job.loaded.summary()
            self._worker = BackgroundRun(self._job).start()  # compute on a worker thread
            self.ui.progressBar.visible = True
            self.ui.cancelButton.enabled = True
            self._onParameterChanged()
            self._timer.start()

    def _poll(self) -> None:
        if self._worker is None:
            return
        message, fraction = self._worker.progress
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.progressBar.format = f"{message} %p%"
        # Slicer's main thread holds the GIL while idle: lend it to the worker between polls
        if not self._worker.wait(0.08):
            return
        self._timer.stop()
        worker, self._worker = self._worker, None
        self.ui.cancelButton.enabled = False
        self.ui.progressBar.visible = False
        try:
            if worker.error is not None:
                # said beside Apply (_onParameterChanged)
                self._status = ("cancelled" if worker.cancelled else "failed", worker.error)
                if not worker.cancelled:
                    slicer.util.errorDisplay(f"The relevance run failed: {worker.error}")
            else:
                with slicer.util.tryWithErrorDisplay("Could not add the results to the scene."):
                    self._lastRun = self.logic.apply(worker.result())  # applies the current display
                    self._shownDisplay = self._displaySettings()
                    self._showResults()
        finally:
            self._job = None
            self._onParameterChanged()

    def _showResults(self) -> None:
        run = self._lastRun
        self._parameterNode.outputVolume = run.node
        self.ui.resultsLabel.text = panel.result_summary(run)
        if run.table_node is not None:
            self.ui.regionTableView.setMRMLTableNode(run.table_node)
            self.ui.regionTableView.visible = True

    def onCancelButton(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.ui.resultsLabel.text = "Cancelling after the current step..."

    def onRegionStatisticsButton(self) -> None:
        p = self._parameterNode
        atlas = p.atlasNode or (None if p.atlasName == NO_ATLAS else p.atlasName)
        with slicer.util.tryWithErrorDisplay("Could not compute region statistics.", waitCursor=True):
            if atlas is None:
                raise ValueError("Choose a bundled atlas or a label map first.")
            self.logic.add_region_table(self._lastRun, atlas)
            self._showResults()


def installedAtlases() -> list:
    """Names of the bundled atlases whose package is installed."""
    return panel.installed_atlases()


def ensureDependencies() -> None:
    """Offer to install what the library needs: torch via the PyTorch extension, the rest via pip."""
    from NeuroRelevanceLib.dependencies import missing_packages, torch_available

    if not torch_available():
        try:
            import PyTorchUtils

            if slicer.util.confirmOkCancelDisplay("NeuroRelevance needs PyTorch. Install it now?"):
                PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False)
        except ImportError:
            slicer.util.errorDisplay("NeuroRelevance needs PyTorch: install the PyTorch extension "
                                     "from the Extensions Manager.")
    missing = missing_packages()
    if missing and slicer.util.confirmOkCancelDisplay(
            "NeuroRelevance needs these Python packages: " + ", ".join(missing) + ". Install now?"):
        slicer.util.pip_install(" ".join(missing))


class NeuroRelevanceLogic(ScriptedLoadableModuleLogic, RelevanceLogic):
    """The library's scene logic on Slicer's scene (or the one given), plus the parameter node.

    Console use: ``logic = slicer.util.getModuleLogic("NeuroRelevance")`` then
    ``run = logic.run([volume], "card.json", preset="alpha1-beta0", atlas="aal3")``.
    """

    def __init__(self, scene=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        RelevanceLogic.__init__(self, scene or slicer.mrmlScene)

    def getParameterNode(self):
        return NeuroRelevanceParameterNode(super().getParameterNode())


class NeuroRelevanceTest(ScriptedLoadableModuleTest):
    """Self-test (``Slicer --testing --python-code "..."`` or Reload and Test): builds its own data."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_run_end_to_end()

    def test_run_end_to_end(self) -> None:
        from NeuroRelevanceLib.selftest import run_self_test

        run_self_test(NeuroRelevanceLogic())
        self.delayDisplay("NeuroRelevance self-test passed")
