"""Table nodes from DataFrames and their CSV files."""
import pandas as pd
import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml import table_from_dataframe, write_table_csv
from NeuroRelevanceLib.mrml.tables import table_from_columns


def test_dataframe_to_table_node_and_csv(scene, tmp_path):
    frame = pd.DataFrame({"label": [4, 17, 53], "name": ["Hippocampus L", "Amygdala R", "x y"],
                          "sum": [1.5, -0.25, 0.0], "rank": [1, 3, 2]})
    node = table_from_dataframe(scene, frame, "Regions")
    assert node.GetNumberOfRows() == 3 and node.GetNumberOfColumns() == 4
    assert node.GetCellText(0, 1) == "Hippocampus L"
    table = node.GetTable()
    assert table.GetColumnByName("sum").GetValue(1) == -0.25
    assert table.GetColumnByName("label").GetValue(2) == 53
    back = pd.read_csv(write_table_csv(node, tmp_path / "regions.csv"))
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_bad_tables(scene):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="differ in length"):
        table_from_columns(scene, {"a": [1, 2], "b": [1]}, "t")
    with pytest.raises(InputError, match="no columns"):
        table_from_columns(scene, {}, "t")
    assert scene.GetNumberOfNodes() == before
