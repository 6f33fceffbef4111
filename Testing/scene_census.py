"""A full record of a scene's state, to check that a failed call left it exactly as it was.

Independent of the code under test: it reads the scene, the subject hierarchy and the slice
composite nodes with MRML's own getters and hashes every volume's voxels.
"""
from __future__ import annotations

import hashlib

import numpy as np


def hierarchy_items(scene) -> list[tuple]:
    """(item ID, name, parent ID, data node ID or None) of every subject-hierarchy item."""
    import slicer
    import vtk

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    ids = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), ids, True)
    items = []
    for index in range(ids.GetNumberOfIds()):
        item = ids.GetId(index)
        node = sh.GetItemDataNode(item)
        items.append((item, sh.GetItemName(item), sh.GetItemParent(item),
                      node.GetID() if node is not None else None))
    return items


def _voxels(node) -> str:
    from vtk.util import numpy_support

    image = node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        return ""
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    return hashlib.sha1(np.ascontiguousarray(values).tobytes()).hexdigest()


def _node_record(node) -> tuple:
    record = [node.GetID(), node.GetClassName(), node.GetName(),
              tuple(sorted((name, node.GetAttribute(name)) for name in node.GetAttributeNames()))]
    if node.IsA("vtkMRMLVolumeNode"):
        record.append(_voxels(node))
    if node.IsA("vtkMRMLScalarVolumeDisplayNode"):
        record += [node.GetColorNodeID(), node.GetWindow(), node.GetLevel()]
    if node.IsA("vtkMRMLSliceCompositeNode"):
        record += [node.GetBackgroundVolumeID(), node.GetForegroundVolumeID(),
                   round(node.GetForegroundOpacity(), 6)]
    if node.IsA("vtkMRMLColorTableNode"):
        record.append(node.GetNumberOfColors())
    if node.IsA("vtkMRMLTableNode"):
        record += [node.GetNumberOfRows(), node.GetNumberOfColumns()]
    return tuple(record)


def census(scene) -> dict:
    """Every node (ID, class, name, attributes, voxels, display), in order, and the hierarchy."""
    items = hierarchy_items(scene)  # first: it adds the hierarchy node to a scene without one
    nodes = [_node_record(scene.GetNthNode(i)) for i in range(scene.GetNumberOfNodes())]
    return {"count": len(nodes), "nodes": nodes, "hierarchy": items}


def orphans(scene) -> list[str]:
    """What a clean scene must not hold: stale hierarchy items, empty folders, unused colour tables."""
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    found = []
    for item, name, _, node_id in hierarchy_items(scene):
        is_folder = sh.GetItemLevel(item) == "Folder" and sh.GetItemDataNode(item) is None
        if node_id is None and not is_folder:
            found.append(f"hierarchy item {name!r} without its node")
        elif node_id is not None and scene.GetNodeByID(node_id) is None:
            found.append(f"hierarchy item {name!r} of a removed node")
        if is_folder and sh.GetNumberOfItemChildren(item) == 0:
            found.append(f"empty folder {name!r}")
    used = set()
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLDisplayNode")):
        used.add(scene.GetNthNodeByClass(i, "vtkMRMLDisplayNode").GetColorNodeID())
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode")):
        table = scene.GetNthNodeByClass(i, "vtkMRMLColorTableNode")
        if table.GetAttribute("Category") == "NeuroRelevance" and table.GetID() not in used:
            found.append(f"colour table {table.GetName()!r} used by no display")
    return found


def vtk_errors(text: str) -> list[str]:
    """VTK's error and warning lines in captured output (its logger writes ``ERR|``/``WARN|``)."""
    return [line for line in text.splitlines()
            if "ERR|" in line or "WARN|" in line or "inconsistency" in line or "ERROR:" in line]
