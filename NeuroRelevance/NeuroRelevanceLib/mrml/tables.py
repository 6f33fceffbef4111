"""Table nodes from tabular results (e.g. region statistics), saved as CSV."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import vtk

from ..errors import InputError


def table_from_dataframe(scene, frame, name: str, node=None):
    """Fill a ``vtkMRMLTableNode`` (new, or ``node``) from a pandas DataFrame, column by column."""
    return table_from_columns(scene, table_columns(frame), name, node)


def table_columns(frame) -> dict[str, np.ndarray]:
    """A DataFrame's columns as named arrays, checked for a table node (adds nothing)."""
    if frame is None or not hasattr(frame, "columns"):
        raise InputError("No table was given: pass a pandas DataFrame.")
    return check_columns({str(c): frame[c].to_numpy() for c in frame.columns})


def check_columns(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
    """Named columns as arrays: at least one column, all of one length."""
    if not columns:
        raise InputError("The table has no columns.")
    arrays = {str(key): np.asarray(values) for key, values in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise InputError(f"Table columns differ in length: {sorted(lengths)}.")
    return arrays


def table_from_columns(scene, columns: Mapping[str, Sequence[Any] | np.ndarray], name: str, node=None):
    """Fill a table node from named columns of equal length; numbers stay numeric.

    Everything is checked and converted before a node is added or changed.
    """
    if scene is None:
        raise InputError("No MRML scene was given.")
    vtk_columns = [_vtk_column(key, values) for key, values in check_columns(columns).items()]
    table = vtk.vtkTable()
    for column in vtk_columns:
        table.AddColumn(column)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    node.SetAndObserveTable(table)
    return node


def write_table_csv(node, path: str | Path) -> Path:
    """Write a table node to CSV through a ``vtkMRMLTableStorageNode``."""
    import slicer

    path = Path(path)
    if path.suffix.lower() not in {".csv", ".tsv"}:
        raise InputError(f"{path.name}: a table file must end in .csv or .tsv.")
    storage = slicer.vtkMRMLTableStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise OSError(f"Could not write {path}: check that the folder exists and is writable.")
    return path


def _vtk_column(name: str, values: np.ndarray):
    cast: Callable[[Any], Any]
    if values.dtype.kind in "iub":
        column = vtk.vtkLongLongArray()
        cast = int
    elif values.dtype.kind == "f":
        column = vtk.vtkDoubleArray()
        cast = float
    else:
        column = vtk.vtkStringArray()
        cast = str
    column.SetName(name)
    column.SetNumberOfValues(len(values))
    for index, value in enumerate(values):
        column.SetValue(index, cast(value))
    return column
