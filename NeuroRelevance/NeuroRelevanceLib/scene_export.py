"""Export of one output of a run: its maps, settings record and its own labelled picture.

:meth:`logic.RelevanceLogic.export` delegates here. The PNGs show the output's own scan under its own
map with its own colour bar and caption — never whatever the slice views happen to show (another
patient, a later run) — and the views are put back as the user had them afterwards. When the scan the
map was computed on is no longer in the scene no PNG is written and a note says why.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import mrml
from .errors import InputError

if TYPE_CHECKING:
    from .logic import HeatmapOutput


def export_output(scene, views: mrml.SliceViews | None, output: HeatmapOutput, folder: str | Path,
                  stem: str, view_names: tuple[str, ...], displayed: bool) -> HeatmapOutput:
    """Write ``output``'s files into ``folder`` (all or nothing); ``output.files`` and ``output.notes``
    then list this export's files and notes only."""
    from .heatmap_files import export_heatmap
    from .mrml.storage import staged_folder

    node = output.node if output is not None else None
    if node is None or node.GetScene() is not scene:
        name = node.GetName() if node is not None else "output"
        raise InputError(f"The output volume '{name}' was deleted from the scene; run again "
                         "(Apply) before exporting.")
    files: dict[str, Path] = {}
    notes = [note for note in [empty_note(node)] if note]
    scan = node.GetNodeReference(mrml.outputs.SOURCE_REFERENCE)
    if views is not None and (scan is None or scan.GetScene() is not scene):
        notes.append(f"No PNG was written: the scan that '{node.GetName()}' was computed on is no longer in the "
                     "scene, and a picture over another volume would not be this map's.")
        views = None
    with staged_folder(folder, stem) as (staging, final), mrml.SceneChange(scene):
        files.update(export_heatmap(node, output.raw, staging, stem, displayed))
        if views is not None:
            with views.showing(scan, node, _opacity(node), view_names):
                for view in view_names:
                    files[f"png_{view}"] = views.render_png(staging / f"{stem}_{view}.png", view, heatmap=node)
    output.files = {kind: final / path.name for kind, path in files.items()}
    output.notes = notes
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return output


def empty_note(node) -> str | None:
    """A note when the map ``node`` shows is empty (a filter kept no voxel), else None."""
    values, _ = mrml.volume_to_array(node)
    if np.any(values):
        return None
    holds = node.GetAttribute(mrml.display.VALUES_ATTRIBUTE) or ""
    if not holds.startswith("displayed: "):
        return f"The map '{node.GetName()}' is zero everywhere: pictures show no overlay."
    return (f"The displayed map of '{node.GetName()}' is empty (the display filter {holds.split(': ', 1)[1]} "
            "keeps no voxel): pictures show no overlay; widen the filter range to see relevance.")


def _opacity(node) -> float:
    display = node.GetDisplayNode()
    text: Any = display.GetAttribute(mrml.display.OPACITY_ATTRIBUTE) if display is not None else None
    return float(text) if text else 0.5
