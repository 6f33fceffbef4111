"""Table nodes from tabular results (e.g. region statistics), saved as CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import vtk

from ..errors import InputError


def table_from_dataframe(scene, frame, name: str, node=None):
    """Fill a ``vtkMRMLTableNode`` (new, or ``node``) from a pandas DataFrame, column by column."""
    columns = {str(c): frame[c].to_numpy() for c in frame.columns}
    return table_from_columns(scene, columns, name, node)


def table_from_columns(scene, columns: Mapping[str, Sequence[Any]], name: str, node=None):
    """Fill a table node from named columns of equal length; numbers stay numeric."""
    if scene is None:
        raise InputError("No MRML scene was given.")
    if not columns:
        raise InputError("The table has no columns.")
    arrays = {key: np.asarray(values) for key, values in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise InputError(f"Table columns differ in length: {sorted(lengths)}.")
    vtk_columns = [_vtk_column(key, values) for key, values in arrays.items()]
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
