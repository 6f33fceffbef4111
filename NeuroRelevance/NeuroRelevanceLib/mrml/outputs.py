"""Heatmap output volumes: geometry of the source, unique name, provenance, hierarchy folder."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError
from .volumes import array_to_volume, check_array, volume_grid

#: attribute and reference names written on every output volume
ATTRIBUTE_PREFIX = "NeuroRelevance."
SOURCE_REFERENCE = "NeuroRelevance.source"


def create_heatmap_volume(scene, source, array_kji: np.ndarray, method: str, *,
                          parameters: Mapping[str, Any] | None = None, target: Any = None,
                          conservation_error: float | None = None, folder: str | int | None = None):
    """Add a scalar volume with ``array_kji`` on the grid of ``source`` and record how it was made.

    The node is named ``"<source> · <method>"`` (made unique), carries the method, parameters
    (JSON), target and conservation error as attributes, references its source volume
    (``NeuroRelevance.source``), and sits in a subject-hierarchy folder under the source's parent:
    ``folder`` is a folder item ID (to group several outputs of one run), a folder name, or None
    for a new folder per run (``"NeuroRelevance · <source> · run N"``). Bad input adds no node.
    """
    if scene is None:
        raise InputError("No MRML scene was given: pass the vtkMRMLScene to add the output to.")
    grid = volume_grid(source)
    array = check_array(array_kji, "relevance map").astype(np.float32, copy=False)
    if array.shape != grid.shape_kji:
        raise InputError(
            f"The relevance map has shape {array.shape} but volume '{source.GetName()}' has "
            f"{grid.shape_kji} (KJI): resample the map onto the source grid first.")
    if not method:
        raise InputError("A method name is needed to label the output (e.g. 'LRP epsilon-plus').")
    params = json.dumps(dict(parameters or {}), sort_keys=True, default=str)  # fails before adding
    node = array_to_volume(scene, array, grid, f"{source.GetName()} · {method}")
    node.SetAttribute(ATTRIBUTE_PREFIX + "method", method)
    node.SetAttribute(ATTRIBUTE_PREFIX + "parameters", params)
    node.SetAttribute(ATTRIBUTE_PREFIX + "target", "" if target is None else str(target))
    if conservation_error is not None:
        node.SetAttribute(ATTRIBUTE_PREFIX + "conservationError", repr(float(conservation_error)))
    node.SetNodeReferenceID(SOURCE_REFERENCE, source.GetID())
    _place_in_folder(scene, source, node, folder)
    return node


#: node reference from a heatmap to the colour table it owns
COLOR_TABLE_REFERENCE = "NeuroRelevance.colorTable"


def remove_with_companions(scene, node) -> None:
    """Remove ``node`` with its subject-hierarchy item and the display nodes, storage node and
    colour table that serve only it.

    The hierarchy item goes first: slicer-core has no subject-hierarchy logic to drop it when the
    node leaves the scene, and a stale item makes VTK report a "DataNodeCache inconsistency" as
    soon as a new node is allocated at the old one's address.
    """
    if node is None or node.GetScene() is None:
        return
    companions = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())] \
        if node.IsA("vtkMRMLDisplayableNode") else []
    companions += [node.GetStorageNode()] if node.IsA("vtkMRMLStorableNode") else []
    companions.append(node.GetNodeReference(COLOR_TABLE_REFERENCE))
    sh = existing_hierarchy(scene)
    item = sh.GetItemByDataNode(node) if sh is not None else 0
    if item:
        sh.RemoveItem(item, False, False)  # the item only; the node is removed below
    scene.RemoveNode(node)  # before its companions: a live volume whose display vanished gets a new one
    for companion in companions:
        if companion is not None and companion.GetScene() is not None:
            scene.RemoveNode(companion)


def output_folder(scene, node) -> int:
    """Subject-hierarchy item ID of the folder holding an output volume (0: none)."""
    sh = hierarchy(scene)
    item = sh.GetItemByDataNode(node)
    return sh.GetItemParent(item) if item else 0


def hierarchy(scene):
    """The scene's subject-hierarchy node (added to the scene if it has none)."""
    import slicer

    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def existing_hierarchy(scene):
    """The scene's subject-hierarchy node, or None: never adds one."""
    return scene.GetFirstNodeByClass("vtkMRMLSubjectHierarchyNode")


def place_in_folder(scene, node, folder_id: int) -> None:
    """Move ``node`` (e.g. a region table) into an existing subject-hierarchy folder."""
    sh = hierarchy(scene)
    item = sh.GetItemByDataNode(node) or sh.CreateItem(folder_id, node)
    sh.SetItemParent(item, folder_id)


def remove_empty_folders(scene, folder_ids) -> None:
    """Remove the given subject-hierarchy folders that no longer hold anything."""
    sh = hierarchy(scene)
    for folder_id in folder_ids:
        if folder_id and folder_id != sh.GetSceneItemID() and sh.GetNumberOfItemChildren(folder_id) == 0:
            sh.RemoveItem(folder_id)


def _place_in_folder(scene, source, node, folder: str | int | None) -> int:
    sh = hierarchy(scene)
    source_item = sh.GetItemByDataNode(source)
    parent = (sh.GetItemParent(source_item) if source_item else 0) or sh.GetSceneItemID()
    if isinstance(folder, (int, np.integer)) and folder:
        folder_id = int(folder)
    else:
        if folder is None:
            run = 1
            while sh.GetItemChildWithName(parent, f"NeuroRelevance · {source.GetName()} · run {run}"):
                run += 1
            folder = f"NeuroRelevance · {source.GetName()} · run {run}"
        folder_id = sh.GetItemChildWithName(parent, folder) or sh.CreateFolderItem(parent, folder)
    place_in_folder(scene, node, folder_id)
    return folder_id
