"""Label maps and segmentations of a scene as (labels, names) pairs for region statistics."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..geometry import Grid
from .volumes import volume_to_array


def label_names(node) -> dict[int, str]:
    """``{label value: name}`` from a label map's colour table (only the values present)."""
    values, _ = volume_to_array(node)
    present = [int(v) for v in np.unique(values) if v != 0]
    display = node.GetDisplayNode()
    colors = display.GetColorNode() if display is not None else None
    names = {}
    for value in present:
        name = colors.GetColorName(value) if colors is not None else ""
        names[value] = name if name and name != "(none)" else f"label {value}"
    return names


def labelmap_arrays(node) -> tuple[np.ndarray, Grid, dict[int, str]]:
    """Labels (KJI, integer), grid and names of a label map or segmentation node.

    A segmentation is exported to a temporary label map (removed again, the scene is left as it
    was); its regions are named after its segments.
    """
    if node is None:
        raise InputError("No label map was given: select a label map or segmentation.")
    if node.IsA("vtkMRMLSegmentationNode"):
        return _segmentation_arrays(node)
    values, grid = volume_to_array(node)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise InputError(f"'{node.GetName()}' holds non-integer values; a label map is needed.")
        values = values.astype(np.int32)
    return values, grid, label_names(node)


def _segmentation_arrays(segmentation) -> tuple[np.ndarray, Grid, dict[int, str]]:
    import slicer

    scene = segmentation.GetScene()
    if scene is None:
        raise InputError(f"Segmentation '{segmentation.GetName()}' is not in a scene.")
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    existing = _node_ids(scene)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "NeuroRelevance temporary")
    try:
        if not logic.ExportAllSegmentsToLabelmapNode(segmentation, labelmap):
            raise InputError(f"Segmentation '{segmentation.GetName()}' could not be turned into a "
                             "label map (is it empty?).")
        values, grid = volume_to_array(labelmap)
        exported_names = label_names(labelmap)  # the export's colour table names the segments
    finally:  # the export adds a label map, its display and a colour table: remove them all
        for node_id in _node_ids(scene) - existing:
            scene.RemoveNode(scene.GetNodeByID(node_id))
    return values.astype(np.int32), grid, exported_names


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
