"""Scene label maps and segmentations as atlases: values, geometry and names."""
import numpy as np
import pytest
import slicer

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml.labels import labelmap_arrays


@pytest.fixture
def labelmap(scene, views, grid):
    labels = np.zeros(grid.shape_kji, np.int16)
    labels[:3] = 1
    labels[3:, :, 4:] = 2
    node = mrml.array_to_volume(scene, labels, grid, "regions", node_class="vtkMRMLLabelMapVolumeNode")
    node.CreateDefaultDisplayNodes()
    colors = slicer.vtkMRMLColorTableNode()
    colors.SetTypeToUser()
    colors.SetNumberOfColors(3)
    colors.SetColor(1, "Hippocampus", 1, 0, 0, 1)
    colors.SetColor(2, "Amygdala", 0, 1, 0, 1)
    scene.AddNode(colors)
    node.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())
    return node, labels


def test_labelmap_names_from_its_colour_table(labelmap, grid):
    node, labels = labelmap
    values, out_grid, names = labelmap_arrays(node)
    assert np.array_equal(values, labels) and out_grid.same_as(grid)
    assert names == {1: "Hippocampus", 2: "Amygdala"}


def test_segmentation_exported_and_named_by_segments(scene, labelmap, grid):
    node, labels = labelmap
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "seg")
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    assert logic.ImportLabelmapToSegmentationNode(node, segmentation)
    before = scene.GetNumberOfNodes()
    values, out_grid, names = labelmap_arrays(segmentation)
    assert scene.GetNumberOfNodes() == before
    assert sorted(names.values()) == ["Amygdala", "Hippocampus"]
    for value, name in names.items():  # each named region is where the label map had it
        original = {"Hippocampus": 1, "Amygdala": 2}[name]
        assert (values == value).sum() == (labels == original).sum()


def test_float_labelmap_refused(scene, grid):
    node = mrml.array_to_volume(scene, np.full(grid.shape_kji, 0.5, np.float32), grid, "soft")
    with pytest.raises(InputError, match="non-integer"):
        labelmap_arrays(node)
    with pytest.raises(InputError, match="No label map"):
        labelmap_arrays(None)
