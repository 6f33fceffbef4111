"""All or nothing: undo what a block added to a scene when the block fails.

``with SceneChange(scene): ...`` records the scene's node IDs, subject-hierarchy items and slice
views (background, foreground, opacity) on entry. If the block raises, every node and hierarchy
item added since is removed again (with the display, storage and colour-table nodes they brought)
and the views are restored, then the exception propagates. Nodes that existed before are never
touched: a block must only *add* (build the new result beside the old one) and replace the old
result after the block succeeded.
"""
from __future__ import annotations

from typing import Literal

from .display import composite_nodes
from .outputs import existing_hierarchy, remove_with_companions


class SceneChange:
    """Context manager: on an exception, the scene goes back to what it held on entry."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self._nodes: set[str] = set()
        self._items: set[int] = set()
        self._views: list[tuple] = []

    def __enter__(self) -> SceneChange:
        self._nodes = node_ids(self.scene)
        self._items = set(item_ids(self.scene))
        self._views = [(c, c.GetBackgroundVolumeID(), c.GetForegroundVolumeID(), c.GetForegroundOpacity())
                       for c in composite_nodes(self.scene)]
        return self

    def added_nodes(self) -> list:
        """Nodes added since the block began, in scene order."""
        return [self.scene.GetNthNode(i) for i in range(self.scene.GetNumberOfNodes())
                if self.scene.GetNthNode(i).GetID() not in self._nodes]

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc_type is not None:
            self.rollback()
        return False  # never swallow the error

    def rollback(self) -> None:
        """Restore the views and remove what was added (also usable without ``with``).

        The views go first: a slice view still showing a volume would give it a new display node.
        """
        for composite, background, foreground, opacity in self._views:
            if composite.GetScene() is self.scene:
                composite.SetBackgroundVolumeID(_existing(self.scene, background))
                composite.SetForegroundVolumeID(_existing(self.scene, foreground))
                composite.SetForegroundOpacity(opacity)
        for node in reversed(self.added_nodes()):  # a hierarchy node added by the block too
            if node.GetScene() is self.scene:
                remove_with_companions(self.scene, node)
        sh = existing_hierarchy(self.scene)
        for item in reversed(item_ids(self.scene)):  # children before their folders
            if item not in self._items:
                sh.RemoveItem(item, False, False)


def node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def item_ids(scene) -> list[int]:
    """Every subject-hierarchy item below the scene item, parents before children (none
    without a hierarchy node: this never adds one)."""
    import vtk

    sh = existing_hierarchy(scene)
    if sh is None:
        return []
    ids = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), ids, True)
    return [ids.GetId(i) for i in range(ids.GetNumberOfIds())]


def _existing(scene, node_id):
    return node_id if node_id and scene.GetNodeByID(node_id) is not None else None
