"""Bad inputs give one clear InputError naming the cause and the fix, and nothing is modified."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.regions import Atlas, plot_top_regions, read_lookup_table
from volumes import atlas_ijk, kji

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 1
    labels[2:5, 2:8, 2:8] = 2
    return atlas_ijk(labels, AFFINE, {1: "Core", 2: "Side"}, name="box")


def inside_heat() -> np.ndarray:
    heat = np.zeros((10, 10, 10))
    heat[3:7, 3:7, 3:7] = 1.0
    return heat


def test_heatmap_outside_the_atlas_names_the_overlap_and_the_fix(atlas):
    far = AFFINE.copy()
    far[:3, 3] = (500.0, 0.0, 0.0)
    with pytest.raises(InputError, match=r"Only 0\.0% of the relevance .*0\.0% of its nonzero voxels.*transform="):
        region_statistics(kji(inside_heat(), far), atlas, min_overlap=0.0)


def test_partial_overlap_below_the_threshold_is_refused_and_accepted_when_lowered(atlas):
    heat = np.ones((10, 10, 10))  # support = whole grid; atlas regions cover 6³ of 10³ voxels
    with pytest.raises(InputError, match=r"21\.6% .*21\.6% of its nonzero voxels.*min_overlap=0\.5"):
        region_statistics(kji(heat, AFFINE), atlas)
    table = region_statistics(kji(heat, AFFINE), atlas, min_overlap=0.2)
    assert table.attrs["overlap"] == pytest.approx(0.216)


def test_overlap_weighs_relevance_not_just_nonzero_voxels(atlas):
    """A faint nonzero tail everywhere (e.g. a Gaussian) must not look like a misregistration."""
    heat = np.full((10, 10, 10), 1e-9)
    heat[3:7, 3:7, 3:7] = 1.0
    table = region_statistics(kji(heat, AFFINE), atlas)
    assert table.attrs["overlap"] > 0.99
    heat = np.full((10, 10, 10), 1.0)
    heat[3:7, 3:7, 3:7] = 1e-3  # most relevance outside the regions: refused
    with pytest.raises(InputError, match=r"relevance \(Σ\|R\|\).*21\.6% of its nonzero voxels"):
        region_statistics(kji(heat, AFFINE), atlas)


def test_non_integer_label_map(atlas):
    labels = np.random.default_rng(0).uniform(0, 5, size=(10, 10, 10))
    with pytest.raises(InputError, match="non-integer values"):
        region_statistics(kji(inside_heat(), AFFINE), kji(labels, AFFINE))


def test_float_label_map_with_integer_values_is_fine():
    labels = np.zeros((10, 10, 10), dtype=np.float32)
    labels[2:8, 2:8, 2:8] = 3.0
    table = region_statistics(kji(inside_heat(), AFFINE), kji(labels, AFFINE))
    assert table["label"].tolist() == [3]


@pytest.mark.parametrize("labels, message", [
    (np.zeros((10, 10, 10), dtype=np.int16), "only background"),
    (np.full((10, 10, 10), -1, dtype=np.int16), "negative labels"),
    (np.ones((10, 10), dtype=np.int16), "2D"),
    (np.array([["a"]] * 3), "2D|dtype"),
])
def test_bad_label_maps(labels, message):
    with pytest.raises(InputError, match=message):
        region_statistics(kji(inside_heat(), AFFINE), kji(labels, AFFINE))


@pytest.mark.parametrize("heatmap, message", [
    (kji(np.zeros((10, 10, 10)), AFFINE), "all zero"),
    (kji(np.full((10, 10, 10), np.nan), AFFINE), "1000 NaN or infinite"),
    ((np.ones((2, 10, 10, 10)), Grid((10, 10, 10), AFFINE)), r"4D \(2, 10, 10, 10\)"),
    (kji(np.ones((10, 10)), AFFINE), "2D"),
    ((np.ones((10, 10, 10)), np.eye(3)), r"ndarray, not a Grid.*\(array_kji, Grid\)"),
    ((np.ones((10, 10, 10)), AFFINE), r"ndarray, not a Grid.*transpose\(2, 1, 0\)"),   # the old (array, affine)
    ((np.ones((14, 12, 10)), Grid((10, 12, 14), AFFINE)), r"shape \(14, 12, 10\) but its Grid is \(10, 12, 14\)"),
    ((np.ones((10, 10, 10)), Grid((10, 10, 10), np.r_[AFFINE[:3], [[0, 0, 1, 1]]])), "last row"),
    ((np.ones((10, 10, 10)),), r"1 items"),
    (np.ones((10, 10, 10)), "without geometry"),
    ("/no/such/heatmap.nii.gz", "No heatmap file"),
    (42, "Cannot read"),
])
def test_bad_heatmaps(atlas, heatmap, message):
    with pytest.raises(InputError, match=message):
        region_statistics(heatmap, atlas)


def test_one_nan_is_counted(atlas):
    heat = inside_heat()
    heat[0, 0, 0] = np.inf
    heat[1, 0, 0] = np.nan
    with pytest.raises(InputError, match="2 NaN or infinite values"):
        region_statistics(kji(heat, AFFINE), atlas)
    assert np.isinf(heat[0, 0, 0])  # the user's array is untouched


@pytest.mark.parametrize("kwargs, message", [
    ({"rank_by": "colour"}, "rank_by='colour'"),
    ({"min_overlap": 1.5}, r"min_overlap must lie in \[0, 1\]"),
    ({"transform": "identity"}, "SimpleITK transform"),
    ({"transform": np.ones((3, 4))}, "4×4"),
    ({"reference": []}, "list is empty"),
])
def test_bad_options(atlas, kwargs, message):
    with pytest.raises(InputError, match=message):
        region_statistics(kji(inside_heat(), AFFINE), atlas, **kwargs)


def test_unknown_atlas_lists_the_choices():
    with pytest.raises(InputError, match=r"neither a bundled atlas.*AAL3, DesikanKilliany"):
        region_statistics(kji(inside_heat(), AFFINE), "Brodmann")


def test_names_with_a_bundled_atlas_is_refused():
    with pytest.raises(InputError, match="bundled with its own names"):
        region_statistics(kji(inside_heat(), AFFINE), "AAL", names={1: "x"})


def test_unreadable_files(tmp_path, atlas):
    bad = tmp_path / "heat.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        region_statistics(bad, atlas)
    table = tmp_path / "lut.txt"
    table.write_text("1 Hippocampus 1 2 3 255\nHippocampus without id\n")
    with pytest.raises(InputError, match=r"line 2"):
        read_lookup_table(table)
    csv = tmp_path / "lut.csv"
    csv.write_text("colour,size\nred,3\n")
    with pytest.raises(InputError, match="cannot find an id and a name column"):
        read_lookup_table(csv)


def test_plot_rejects_unknown_metric(atlas):
    table = region_statistics(kji(inside_heat(), AFFINE), atlas)
    with pytest.raises(InputError, match="no 'gain' column"):
        plot_top_regions(table, metric="gain")


def test_label_map_file_with_scaled_float_values_is_refused(tmp_path):
    image = nib.Nifti1Image(np.random.default_rng(1).uniform(0, 3, (6, 6, 6)).astype(np.float32), np.eye(4))
    nib.save(image, tmp_path / "t1.nii.gz")
    with pytest.raises(InputError, match="intensity image"):
        region_statistics(kji(np.ones((6, 6, 6)), np.eye(4)), tmp_path / "t1.nii.gz")


@pytest.mark.parametrize("kind", ["nan", "zeros", "4d", "complex", "far"])
@pytest.mark.parametrize("role", ["heatmap", "reference heatmap"])
def test_a_file_is_named_as_a_heatmap_file_in_every_message(tmp_path, atlas, kind, role):
    """"The nan.nii.gz holds 1 NaN …" (trial 1): a file is "the heatmap file nan.nii.gz", never "the nan.nii.gz"."""
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(inside_heat().astype(np.float32), AFFINE), good)
    values, affine = inside_heat(), AFFINE.copy()
    if kind == "nan":
        values[5, 5, 5] = np.nan
    elif kind == "zeros":
        values[:] = 0
    elif kind == "4d":
        values = np.stack([values, values], axis=-1)
    elif kind == "complex":
        values = values.astype(np.complex64)
    else:
        affine[:3, 3] = 1000.0
    bad = tmp_path / f"{kind}.nii.gz"
    nib.save(nib.Nifti1Image(values, affine), bad)
    heat, reference = (bad, good) if role == "heatmap" else (good, bad)
    with pytest.raises(InputError) as info:
        region_statistics(str(heat), atlas, reference=str(reference), min_overlap=0.0)
    message = str(info.value)
    assert f"{role} file {kind}.nii.gz" in message, message
    assert f"The {kind}.nii.gz" not in message and f"the {kind}.nii.gz" not in message, message
