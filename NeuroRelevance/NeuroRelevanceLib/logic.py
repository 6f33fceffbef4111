"""Scene-level workflow: the one place where MRML, files and (later) the engine meet.

The Slicer module's Logic and the command line both delegate here. Every method works on the
scene given at construction, never on the global ``slicer.mrmlScene``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import mrml
from .errors import InputError


@dataclass
class HeatmapOutput:
    """What one run left in the scene and on disk."""

    node: Any
    files: dict[str, Path] = field(default_factory=dict)


class RelevanceLogic:
    """Turns relevance arrays into labelled, displayed output volumes of a scene."""

    def __init__(self, scene, views: "mrml.SliceViews | None" = None) -> None:
        if scene is None:
            raise InputError("No MRML scene was given.")
        self.scene = scene
        self.views = views

    def add_heatmap(self, source, relevance_kji: np.ndarray, method: str, *,
                    parameters: Mapping[str, Any] | None = None, target: Any = None,
                    conservation_error: float | None = None, opacity: float = 0.5,
                    threshold: float = 0.0, positive_only: bool = False) -> HeatmapOutput:
        """Add ``relevance_kji`` (on the grid of ``source``) as a heatmap shown over ``source``."""
        if not 0.0 <= opacity <= 1.0:  # checked before any node is added
            raise InputError(f"Opacity {opacity} must lie in [0, 1].")
        mrml.display.colormap_rgba(threshold)  # validates the threshold, adds nothing
        node = mrml.create_heatmap_volume(
            self.scene, source, relevance_kji, method, parameters=parameters, target=target,
            conservation_error=conservation_error)
        mrml.show_heatmap(self.scene, node, source, opacity=opacity, threshold=threshold,
                          positive_only=positive_only)
        return HeatmapOutput(node)

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
