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

    def explain_volumes(self, volumes: Sequence[Any], loaded, *, preset: str = "epsilon-plus",
                        target: Any = None, filter: str | None = None,
                        filter_range: tuple[float, float] = (0.0, 1.0),
                        filter_placement: str = "input", opacity: float = 0.5,
                        threshold: float = 0.0, positive_only: bool = False,
                        **engine_params: Any) -> RunResult:
        """Run LRP for one scan (one volume node per input channel) with a loaded model.

        The volumes are resampled into the model grid (``loaded.card``), explained there, and the
        relevance of each channel is resampled back onto the first volume's grid as an output
        volume in one subject-hierarchy folder. Nothing is added when an input is wrong.
        """
        import torch

        from .engine import explain
        from .preprocessing import prepare_input

        if loaded is None or getattr(loaded, "card", None) is None:
            raise InputError("A model with a model card is needed (it gives the input grid and "
                             "normalisation): load a card JSON, or write one for this model.")
        if not volumes or any(v is None for v in volumes):
            raise InputError("Select one input volume per model channel "
                             f"({', '.join(loaded.card.input.channels)}).")
        _check_display(opacity, threshold)
        channels = [mrml.volume_to_array(node) for node in volumes]
        prepared = prepare_input(channels, loaded.card)
        x = torch.from_numpy(prepared.array[None])
        placement_filter = filter if filter_placement == "every-layer" else None
        result = explain(loaded.model, x, preset=preset, target=target, filter=placement_filter,
                         filter_range=filter_range, filter_placement=filter_placement,
                         device=loaded.device, **engine_params)
        relevance = result.relevance[0].numpy()
        raw = [prepared.to_source(relevance[c]) for c in range(relevance.shape[0])]
        prediction = describe_prediction(result.output[0], loaded.card)
        parameters = {"preset": preset, "filter": filter, "filter_range": list(filter_range),
                      "filter_placement": filter_placement, "model": loaded.card.name,
                      **{k: v for k, v in engine_params.items() if _plain(v)}}
        run = RunResult([], result, prepared, raw, prediction)
        folder = None
        for c, name in enumerate(loaded.card.input.channels):
            shown = raw[c] if filter_placement == "every-layer" else filter_relevance(
                raw[c], filter, filter_range)
            method = f"LRP {preset}" + (f" [{name}]" if len(raw) > 1 else "")
            out = self.add_heatmap(volumes[0], shown, method, parameters=parameters,
                                   target=result.target,
                                   conservation_error=result.max_conservation_error,
                                   opacity=opacity, threshold=threshold,
                                   positive_only=positive_only, folder=folder)
            folder = mrml.output_folder(self.scene, out.node)
            run.outputs.append(out)
        mrml.show_heatmap(self.scene, run.node, volumes[0], opacity=opacity, threshold=threshold,
                          positive_only=positive_only)
        return run

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
