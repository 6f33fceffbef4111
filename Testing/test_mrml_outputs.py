"""Heatmap output volumes: source geometry, unique names, provenance, hierarchy folders."""
import json

import numpy as np
import pytest
import slicer

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml import array_to_volume, create_heatmap_volume, volume_to_array
from NeuroRelevanceLib.mrml.outputs import SOURCE_REFERENCE, output_folder


@pytest.fixture
def source(scene, grid):
    return array_to_volume(scene, np.ones(grid.shape_kji, np.int16), grid, "T1")


def test_output_copies_geometry_and_records_provenance(scene, grid, source):
    relevance = np.random.default_rng(0).normal(size=grid.shape_kji)
    node = create_heatmap_volume(scene, source, relevance, "LRP epsilon-plus",
                                 parameters={"epsilon": 1e-6}, target=1, conservation_error=3e-7)
    array, out_grid = volume_to_array(node)
    assert out_grid.same_as(grid, atol=0) and array.dtype == np.float32
    assert np.allclose(array, relevance, atol=1e-6)
    assert node.GetName() == "T1 · LRP epsilon-plus"
    assert node.GetAttribute("NeuroRelevance.method") == "LRP epsilon-plus"
    assert json.loads(node.GetAttribute("NeuroRelevance.parameters")) == {"epsilon": 1e-6}
    assert node.GetAttribute("NeuroRelevance.target") == "1"
    assert float(node.GetAttribute("NeuroRelevance.conservationError")) == 3e-7
    assert node.GetNodeReference(SOURCE_REFERENCE) is source


def test_names_unique_and_one_folder_per_run(scene, grid, source):
    zeros = np.zeros(grid.shape_kji)
    first = create_heatmap_volume(scene, source, zeros, "LRP")
    second = create_heatmap_volume(scene, source, zeros, "LRP")
    assert first.GetName() != second.GetName()
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    f1, f2 = output_folder(scene, first), output_folder(scene, second)
    assert f1 != f2
    assert sh.GetItemName(f1) == "NeuroRelevance · T1 · run 1"
    assert sh.GetItemName(f2) == "NeuroRelevance · T1 · run 2"
    third = create_heatmap_volume(scene, source, zeros, "LRP channel 2", folder=f2)
    assert output_folder(scene, third) == f2


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 3, 3)), "resample the map"),
    (np.full((7, 9, 11), np.inf), "NaN/inf"),
    (np.zeros((7, 9)), "must be 3D"),
])
def test_bad_outputs_add_no_node(scene, grid, source, bad, match):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match=match):
        create_heatmap_volume(scene, source, bad, "LRP")
    assert scene.GetNumberOfNodes() == before


def test_unserialisable_parameters_fail_before_adding(scene, grid, source):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="method name"):
        create_heatmap_volume(scene, source, np.zeros(grid.shape_kji), "")
    assert scene.GetNumberOfNodes() == before
