"""MRML bridge: volume nodes <-> numpy, heatmap outputs, display, storage, tables, rendering.

Needs ``slicer-core`` (``slicer.vtkMRML*``) but never ``slicer.app`` or Qt. Every function takes
the ``scene`` (``vtkMRMLScene``) or a node explicitly and never uses the global
``slicer.mrmlScene``. Knows nothing of torch.
"""
from . import labels
from .display import diverging_color_table, show_heatmap
from .legend import register_node_classes
from .outputs import create_heatmap_volume, output_folder
from .results import OutputPlan, PlannedTable, PlannedVolume, commit
from .storage import read_volume, save_scene, save_scene_bundle, write_volume
from .tables import table_from_dataframe, write_table_csv
from .transaction import SceneChange
from .views import SliceViews
from .volumes import array_to_volume, mark_modified, volume_buffer, volume_grid, volume_to_array

__all__ = [
    "OutputPlan", "PlannedTable", "PlannedVolume", "SceneChange", "SliceViews", "array_to_volume", "commit",
    "create_heatmap_volume", "diverging_color_table", "labels", "mark_modified", "output_folder", "read_volume",
    "register_node_classes", "save_scene", "save_scene_bundle", "show_heatmap", "table_from_dataframe",
    "volume_buffer", "volume_grid",
    "volume_to_array", "write_table_csv", "write_volume",
]
