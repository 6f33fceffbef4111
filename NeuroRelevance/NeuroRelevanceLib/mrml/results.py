"""A result's nodes as a plan: validated before the scene changes, then added all or nothing.

Build an :class:`OutputPlan` (heatmap volumes and tables, with every attribute they will carry:
run key, provenance, ...); constructing it checks everything that can be checked without a
node — finite voxels on the source's grid, a method name, JSON-able parameters, table columns.
:func:`commit` then adds the new nodes beside the earlier result inside a :class:`SceneChange`
(a failure removes them again and restores the views), and only after that succeeded removes the
nodes the plan replaces, gives the new nodes their plain names and drops folders left empty.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .display import label_values
from .outputs import create_heatmap_volume, output_folder, place_in_folder, remove_empty_folders, remove_with_companions
from .tables import table_columns, table_from_columns
from .transaction import SceneChange
from .volumes import check_array, volume_grid


@dataclass
class PlannedVolume:
    """One heatmap volume to add over ``source`` (checked on construction)."""

    source: Any
    array: np.ndarray
    method: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    target: Any = None
    conservation_error: float | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    shown: tuple = (None, (0.0, 1.0))  # the display filter its voxels hold (display.label_values)
    what: str = "relevance map"

    def __post_init__(self) -> None:
        if self.source is None or self.source.GetScene() is None:
            raise InputError(f"The input volume of the {self.what} was removed from the scene; run again.")
        self.array = check_array(self.array, f"{self.what} for '{self.source.GetName()}'")
        shape = volume_grid(self.source).shape_kji
        if self.array.shape != shape:
            raise InputError(f"The {self.what} has shape {self.array.shape} but '{self.source.GetName()}' "
                             f"now has {shape} (KJI): the volume changed during the run; run again.")
        if not self.method:
            raise InputError("A method name is needed to label the output (e.g. 'LRP epsilon-plus').")
        json.dumps(dict(self.parameters), default=str)
        self.attributes = {str(k): str(v) for k, v in self.attributes.items()}

    @property
    def name(self) -> str:
        return f"{self.source.GetName()} · {self.method}"


@dataclass
class PlannedTable:
    """One table node to add (from a pandas DataFrame; columns checked on construction)."""

    frame: Any
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    columns: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.columns = table_columns(self.frame)
        self.attributes = {str(k): str(v) for k, v in self.attributes.items()}


@dataclass
class OutputPlan:
    """Everything a result adds, and the nodes of the earlier result it replaces."""

    volumes: Sequence[PlannedVolume]
    tables: Sequence[PlannedTable] = ()
    replaces: Sequence[Any] = ()


def commit(scene, plan: OutputPlan, show: Callable[[list], None] | None = None) -> tuple[list, list]:
    """Add the plan's volumes and tables (one folder), call ``show(volumes)``, then replace.

    Returns ``(volume nodes, table nodes)``. Any exception before the replacement leaves the
    scene as it was, the earlier result included.
    """
    if not plan.volumes:
        raise InputError("Nothing to add: the plan holds no output volume.")
    old = [node for node in plan.replaces if node is not None and node.GetScene() is scene]
    old_folders = {output_folder(scene, node) for node in old} - {0}
    reused = next(iter(old_folders)) if len(old_folders) == 1 else None
    with SceneChange(scene):
        folder = reused
        volumes = []
        for planned in plan.volumes:
            node = create_heatmap_volume(scene, planned.source, planned.array, planned.method,
                                         parameters=planned.parameters, target=planned.target,
                                         conservation_error=planned.conservation_error, folder=folder)
            for key, value in planned.attributes.items():
                node.SetAttribute(key, value)
            folder = folder or output_folder(scene, node)
            volumes.append(node)
        tables = []
        for planned_table in plan.tables:
            node = table_from_columns(scene, planned_table.columns, planned_table.name)
            for key, value in planned_table.attributes.items():
                node.SetAttribute(key, value)
            place_in_folder(scene, node, folder or 0)  # a volume came first: folder is set
            tables.append(node)
        if show is not None:
            show(volumes)
    for node in old:
        remove_with_companions(scene, node)
    remove_empty_folders(scene, old_folders)
    for node, planned in zip(volumes, plan.volumes, strict=True):
        settle_name(scene, node, planned.name)
        label_values(node, *planned.shown)  # "… [shown: pass 0.30–1.00]" when filtered
    for node, planned_table in zip(tables, plan.tables, strict=True):
        settle_name(scene, node, planned_table.name)
    return volumes, tables


def settle_name(scene, node, name: str) -> None:
    """Give ``node`` the plain ``name`` when no other node holds it (a replaced result's name)."""
    holder = scene.GetFirstNodeByName(name)
    if holder is None or holder is node:
        node.SetName(name)
