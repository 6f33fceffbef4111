"""Scene-level workflow: the one place where MRML, the model, the engine and the statistics meet.

The Slicer module's Logic and the command line both delegate here. Every method works on the
scene given at construction, never on the global ``slicer.mrmlScene``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import mrml
from .errors import InputError


@dataclass
class HeatmapOutput:
    """What one run left in the scene and on disk."""

    node: Any
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class RunResult:
    """One explained scan: output nodes per input channel and the raw maps they came from.

    ``raw_source`` holds the unfiltered relevance resampled onto the source grid, so a change of
    filter, threshold or opacity updates the overlay without running the network again.
    """

    outputs: list[HeatmapOutput]
    explanation: Any                     # engine Explanation (model space)
    model_input: Any                     # preprocessing.ModelInput (model grid, channels)
    raw_source: list[np.ndarray]         # per channel, KJI on the source grid
    prediction: str = ""
    table: Any = None                    # region statistics (pandas DataFrame) when an atlas was given
    table_node: Any = None

    @property
    def node(self):
        return self.outputs[0].node

    def model_space_relevance(self, channel: int | None = None) -> np.ndarray:
        """Relevance on the model grid (KJI), one channel or summed over channels."""
        r = self.explanation.relevance[0].numpy()
        return r.sum(0) if channel is None else r[channel]


class RelevanceLogic:
    """Explains scans in a scene and turns relevance into labelled, displayed output volumes."""

    def __init__(self, scene, views: "mrml.SliceViews | None" = None) -> None:
        if scene is None:
            raise InputError("No MRML scene was given.")
        self.scene = scene
        self.views = views

    def add_heatmap(self, source, relevance_kji: np.ndarray, method: str, *,
                    parameters: Mapping[str, Any] | None = None, target: Any = None,
                    conservation_error: float | None = None, opacity: float = 0.5,
                    threshold: float = 0.0, positive_only: bool = False,
                    folder: str | int | None = None) -> HeatmapOutput:
        """Add ``relevance_kji`` (on the grid of ``source``) as a heatmap shown over ``source``."""
        _check_display(opacity, threshold)
        node = mrml.create_heatmap_volume(
            self.scene, source, relevance_kji, method, parameters=parameters, target=target,
            conservation_error=conservation_error, folder=folder)
        mrml.show_heatmap(self.scene, node, source, opacity=opacity, threshold=threshold,
                          positive_only=positive_only)
        return HeatmapOutput(node)

    def run(self, volumes: Sequence[Any], model: Any, *, preset: str = "epsilon-plus",
            target: Any = None, filter: str | None = None,
            filter_range: tuple[float, float] = (0.0, 1.0), filter_placement: str = "input",
            atlas: Any = None, opacity: float = 0.5, threshold: float = 0.0,
            positive_only: bool = False, trusted: bool = False, device: Any = "auto",
            **engine_params: Any) -> RunResult:
        """Explain one scan (one volume node per model input channel) and show the result.

        ``model`` is a loaded model (:func:`models.load_model`) or a path to load. The volumes
        are resampled into the model grid given by its card, explained there with LRP, and each
        channel's relevance is resampled back onto its volume's grid as an output volume named
        ``"<volume> · LRP <preset> · <target>"``, all in one subject-hierarchy folder with, when
        ``atlas`` is given, the region statistics table. Running again with the same inputs and
        settings replaces that run's nodes (never the inputs). Bad input adds no node.
        """
        import torch

        from .engine import explain
        from .models import LoadedModel, load_model
        from .preprocessing import prepare_input

        loaded = model if isinstance(model, LoadedModel) else load_model(
            model, trusted=trusted, device=device)
        if loaded.card is None:
            raise InputError("A model card is needed (it gives the input grid and normalisation): "
                             "load a card JSON, or write one for this model (see docs/pretrained.md).")
        names = loaded.card.input.channels
        if not volumes or any(v is None for v in volumes):
            raise InputError(f"Select one input volume per model channel ({', '.join(names)}).")
        _check_display(opacity, threshold)
        channels = [mrml.volume_to_array(node) for node in volumes]
        prepared = prepare_input(channels, loaded.card)
        class_index = resolve_target(target, loaded.card)
        x = torch.from_numpy(prepared.array[None])
        every_layer = filter_placement == "every-layer"
        result = explain(loaded.model, x, preset=preset, target=class_index,
                         filter=filter if every_layer else None, filter_range=filter_range,
                         filter_placement=filter_placement, device=loaded.device, **engine_params)
        relevance = result.relevance[0].numpy()
        raw = [resample_back(prepared, relevance[c], grid) for c, (_, grid) in enumerate(channels)]
        table = None
        if atlas is not None:
            table = self.region_table(prepared, relevance.sum(0), atlas)
        label = target_label(result.output[0], class_index, loaded.card)
        key = run_key(volumes, loaded, preset, class_index, filter, filter_range,
                      filter_placement, engine_params)
        self.remove_run(key)
        parameters = {"preset": preset, "target": label, "filter": filter,
                      "filter_range": list(filter_range), "filter_placement": filter_placement,
                      "model": loaded.card.name,
                      **{k: v for k, v in engine_params.items() if _plain(v)}}
        run = RunResult([], result, prepared, raw, describe_prediction(result.output[0], loaded.card))
        folder = None
        for c, volume in enumerate(volumes):
            shown = raw[c] if every_layer else filter_relevance(raw[c], filter, filter_range)
            out = self.add_heatmap(volume, shown, f"LRP {preset} · {label}",
                                   parameters={**parameters, "channel": names[c]}, target=label,
                                   conservation_error=result.max_conservation_error,
                                   opacity=opacity, threshold=threshold,
                                   positive_only=positive_only, folder=folder)
            out.node.SetAttribute(RUN_KEY, key)
            folder = mrml.output_folder(self.scene, out.node)
            run.outputs.append(out)
        if table is not None:
            run.table = table
            run.table_node = mrml.table_from_dataframe(
                self.scene, table, f"{volumes[0].GetName()} · LRP {preset} · {label} · regions")
            run.table_node.SetAttribute(RUN_KEY, key)
            mrml.outputs.place_in_folder(self.scene, run.table_node, folder)
        mrml.show_heatmap(self.scene, run.node, volumes[0], opacity=opacity, threshold=threshold,
                          positive_only=positive_only)
        return run

    def region_table(self, prepared, relevance_kji: np.ndarray, atlas: Any):
        """Region statistics of a model-space relevance map (sums are not changed by resampling)."""
        from .geometry import kji_to_nibabel
        from .regions import region_statistics

        return region_statistics((np.ascontiguousarray(kji_to_nibabel(relevance_kji)),
                                  prepared.grid.ijk_to_ras), atlas)

    def remove_run(self, key: str) -> int:
        """Remove the output volumes and tables of an earlier run with this key; returns the count."""
        doomed = []
        for class_name in ("vtkMRMLScalarVolumeNode", "vtkMRMLTableNode"):
            for i in range(self.scene.GetNumberOfNodesByClass(class_name)):
                node = self.scene.GetNthNodeByClass(i, class_name)
                if node.GetAttribute(RUN_KEY) == key:
                    doomed.append(node)
        folders = {mrml.output_folder(self.scene, node) for node in doomed}
        for node in doomed:
            companions = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())] \
                if node.IsA("vtkMRMLDisplayableNode") else []
            companions += [node.GetStorageNode()] if node.IsA("vtkMRMLStorableNode") else []
            for companion in filter(None, companions):
                self.scene.RemoveNode(companion)
            self.scene.RemoveNode(node)
        mrml.outputs.remove_empty_folders(self.scene, folders)
        return len(doomed)

    def refilter(self, run: RunResult, filter: str | None, filter_range=(0.0, 1.0), *,
                 opacity: float = 0.5, threshold: float = 0.0, positive_only: bool = False) -> None:
        """Re-apply an input-placement filter and display settings from the cached raw maps."""
        _check_display(opacity, threshold)
        for out, raw in zip(run.outputs, run.raw_source):
            mrml.update_volume_array(out.node, filter_relevance(raw, filter, filter_range))
        mrml.show_heatmap(self.scene, run.node, opacity=opacity, threshold=threshold,
                          positive_only=positive_only,
                          window=float(np.max(np.abs(run.raw_source[0]))) or 1.0)

    def export(self, output: HeatmapOutput, folder: str | Path, stem: str = "heatmap",
               views: tuple[str, ...] = ("Red", "Yellow", "Green")) -> HeatmapOutput:
        """Write the heatmap (NIfTI), the scene (.mrml) and, with slice views, PNGs to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        output.files["heatmap"] = mrml.write_volume(output.node, folder / f"{stem}.nii.gz")
        if self.views is not None:
            for view in views:
                output.files[f"png_{view}"] = self.views.render_png(folder / f"{stem}_{view}.png", view)
        output.files["scene"] = mrml.save_scene(self.scene, folder / f"{stem}.mrml")
        return output


#: node attribute that identifies the run an output belongs to (same inputs and settings)
RUN_KEY = "NeuroRelevance.runKey"


def resolve_target(target: Any, card) -> Any:
    """A class name from the card becomes its index; other targets pass through unchanged."""
    if isinstance(target, str):
        classes = list(card.output.classes)
        if target not in classes:
            raise InputError(f"Unknown target class '{target}'; the model's classes are {classes}.")
        return classes.index(target)
    return target


def target_label(output, class_index: Any, card) -> str:
    """Short name of what was explained, for node names ("AD", "age", "lesion")."""
    kind = card.output.type
    classes = list(card.output.classes)
    if kind == "regression":
        return classes[0] if classes else "output"
    if kind == "classification":
        index = int(output.argmax()) if class_index is None else int(class_index)
        return classes[index] if index < len(classes) else f"class {index}"
    index = (1 if output.shape[0] > 1 else 0) if class_index is None else int(class_index)
    return classes[index] if index < len(classes) else f"channel {index}"


def resample_back(prepared, relevance_kji: np.ndarray, grid) -> np.ndarray:
    """Model-space relevance onto a channel's own grid (linear interpolation, for display)."""
    from .preprocessing import resample

    return resample(relevance_kji, prepared.grid, grid)


def run_key(volumes, loaded, preset, target, filter, filter_range, placement, params) -> str:
    """A stable identifier of a run's inputs and settings (to replace a repeated run's nodes)."""
    import hashlib
    import json

    payload = json.dumps({"volumes": [v.GetID() for v in volumes], "model": loaded.card.name,
                          "preset": preset, "target": str(target), "filter": filter,
                          "range": [float(v) for v in filter_range], "placement": placement,
                          "params": {k: str(v) for k, v in sorted(params.items())}}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def describe_prediction(output, card) -> str:
    """One line saying what the network predicted, in the card's terms."""
    import torch

    kind = card.output.type
    if kind == "classification":
        probabilities = torch.softmax(output.double().flatten(), 0)
        best = int(probabilities.argmax())
        names = card.output.classes or tuple(str(i) for i in range(len(probabilities)))
        return f"{names[best]} (p = {float(probabilities[best]):.3f})"
    if kind == "regression":
        return f"{float(output.flatten()[0]):.2f} {card.output.units}".strip()
    foreground = int((output.argmax(0) > 0).sum()) if output.shape[0] > 1 else int((output > 0).sum())
    return f"{foreground} foreground voxels"


def filter_relevance(raw: np.ndarray, kind: str | None, value_range=(0.0, 1.0)) -> np.ndarray:
    """The engine's pass/clamp filter (max-|R| normalised) applied to one cached map."""
    import torch

    from .engine.filters import apply_filter, check_filter

    check_filter(kind, value_range, "input")
    if kind is None:
        return raw
    return apply_filter(torch.from_numpy(np.ascontiguousarray(raw))[None], kind, value_range).numpy()[0]


def _check_display(opacity: float, threshold: float) -> None:
    if not 0.0 <= opacity <= 1.0:  # checked before any node is added
        raise InputError(f"Opacity {opacity} must lie in [0, 1].")
    mrml.display.colormap_rgba(threshold)  # validates the threshold, adds nothing


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None)))
