"""Synthetic T1 cohort: determinism, confinement of atrophy to its mask, effect sizes, geometry."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from NeuroRelevanceLib.demo.anatomy import AD_REGIONS, atlas_paths, read_atlas_names, region_ids
from NeuroRelevanceLib.demo.atrophy import AD_LABEL, AGE_GM_LABEL, VENTRICLE_LABEL
from NeuroRelevanceLib.demo.cohort import (
    cohort_table,
    generate_cohort,
    generate_cohort_arrays,
    load_cohort,
    synthesize_subject,
)


@pytest.fixture(scope="module")
def old_ad():
    return synthesize_subject(5, 85.0, "AD", spacing=3.0, seed=7)


def test_same_seed_same_subject_other_seed_differs(old_ad):
    again = synthesize_subject(5, 85.0, "AD", spacing=3.0, seed=7)
    np.testing.assert_array_equal(old_ad.image, again.image)
    np.testing.assert_array_equal(old_ad.atrophy, again.atrophy)
    other = synthesize_subject(5, 85.0, "AD", spacing=3.0, seed=8)
    assert np.abs(other.image - old_ad.image).mean() > 0.01
    assert cohort_table(12, seed=3).equals(cohort_table(12, seed=3))


def test_atrophy_only_inside_saved_mask(old_ad):
    plain = synthesize_subject(5, 85.0, "AD", spacing=3.0, seed=7, effects=False)
    diff = old_ad.image - plain.image
    assert np.count_nonzero(diff[old_ad.atrophy == 0]) == 0
    assert not plain.atrophy.any()
    for label in (AD_LABEL, AGE_GM_LABEL, VENTRICLE_LABEL):
        inside = diff[old_ad.atrophy == label]
        assert inside.size > 20
        assert inside.max() <= 1e-6          # atrophy only darkens (tissue -> fluid)
        assert inside.mean() < -0.1          # and clearly: > 3 noise sd on average


def test_control_keeps_ad_regions_untouched():
    ctrl = synthesize_subject(5, 85.0, "control", spacing=3.0, seed=7)
    plain = synthesize_subject(5, 85.0, "control", spacing=3.0, seed=7, effects=False)
    assert not (ctrl.atrophy == AD_LABEL).any()
    assert (ctrl.regions == AD_LABEL).sum() > 100
    np.testing.assert_array_equal(ctrl.image[ctrl.regions == AD_LABEL],
                                  plain.image[ctrl.regions == AD_LABEL])


def test_effects_grow_with_age_and_disease(old_ad):
    ages = (20.0, 45.0, 70.0, 90.0)
    subs = [synthesize_subject(5, a, "control", spacing=3.0, seed=7) for a in ages]
    gm_age = [s.image[s.regions == AGE_GM_LABEL].mean() for s in subs]
    ventricle = [(s.atrophy == VENTRICLE_LABEL).sum() for s in subs]
    assert np.all(np.diff(gm_age) < -0.02), gm_age
    assert ventricle[0] == 0 and np.all(np.diff(ventricle) > 0), ventricle
    young = subs[0]
    assert not (young.atrophy > 0).any()    # nothing applied at the youngest age
    ctrl = synthesize_subject(5, 85.0, "control", spacing=3.0, seed=7)
    ad_mean = old_ad.image[old_ad.regions == AD_LABEL].mean()
    ctrl_mean = ctrl.image[ctrl.regions == AD_LABEL].mean()
    assert ctrl_mean - ad_mean > 0.1
    assert 0.5 <= old_ad.info["ad_severity"] <= 0.8


def _centroid_mm(labels: np.ndarray, affine: np.ndarray, ids: list[int]) -> np.ndarray:
    ijk = np.argwhere(np.isin(labels, ids))
    return (affine[:3, :3] @ ijk.T + affine[:3, 3:]).mean(axis=1)


def _atlas_file_centroid_mm(ids: list[int]) -> np.ndarray:
    """Oracle: centroid (RAS mm) of atlas regions read straight from the atlas file."""
    img = nib.load(atlas_paths("desikan-killiany")[0])
    return _centroid_mm(np.asarray(img.dataobj), img.affine, ids)


@pytest.mark.parametrize("spacing", [3.0, 1.0])
def test_geometry_matches_atlas_in_world_space(spacing):
    s = synthesize_subject(0, 50.0, "AD", spacing=spacing, seed=0, deformation=False, noise_sd=0)
    aff = s.grid.ijk_to_ras
    np.testing.assert_allclose(np.diag(aff)[:3], spacing)
    assert nib.aff2axcodes(aff) == ("R", "A", "S")
    names = read_atlas_names("desikan-killiany")
    ad_ids = region_ids(names, AD_REGIONS["desikan-killiany"])
    np.testing.assert_allclose(_centroid_mm(s.regions.T, aff, [AD_LABEL]),
                               _atlas_file_centroid_mm(ad_ids), atol=0.6 * spacing)
    # one-sided structures pin down left/right, front/back and up/down
    for name in ("hippocampus_L", "superiorfrontal_R", "entorhinal_L"):
        rid = [k for k, v in names.items() if v == name]
        got = _centroid_mm(s.atlas_labels.T, aff, rid)
        np.testing.assert_allclose(got, _atlas_file_centroid_mm(rid), atol=0.6 * spacing)
    assert _centroid_mm(s.atlas_labels.T, aff, [40])[0] < -10  # hippocampus_L: RAS x < 0


def test_written_cohort_has_correct_nifti_geometry_and_manifest(tmp_path):
    manifest = generate_cohort(tmp_path, 3, spacing=3.0, seed=2, ad_fraction=0.34)
    assert list(manifest.diagnosis).count("AD") == 1
    arrays = generate_cohort_arrays(3, spacing=3.0, seed=2, ad_fraction=0.34)
    table = load_cohort(tmp_path)
    for n, row in table.iterrows():
        img = nib.load(row.image)
        assert img.header.get_sform(coded=True)[1] == 1 and img.header.get_qform(coded=True)[1] == 1
        np.testing.assert_allclose(img.affine, arrays.grid.ijk_to_ras)
        assert img.header.get_zooms() == (3.0, 3.0, 3.0)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), arrays.images[n].transpose(2, 1, 0))
        atrophy = np.asanyarray(nib.load(row.atrophy).dataobj)
        np.testing.assert_array_equal(atrophy, arrays.atrophy[n].transpose(2, 1, 0))
        assert nib.load(row.regions).shape == img.shape
    pd.testing.assert_series_equal(table.age, arrays.table.age)
    desc = json.loads((tmp_path / "cohort.json").read_text())
    assert "hippocampus_L" in desc["ad_regions"] and desc["atrophy_labels"]["3"] == "age_ventricles"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_cohort(tmp_path, 3, spacing=3.0, seed=2)
    (tmp_path / "participants.csv").unlink()   # loose subject files alone are protected too
    before = (tmp_path / "sub-0000_T1w.nii.gz").read_bytes()
    with pytest.raises(FileExistsError, match="sub-"):
        generate_cohort(tmp_path, 1, spacing=3.0, seed=9)
    assert (tmp_path / "sub-0000_T1w.nii.gz").read_bytes() == before


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(age=10.0), ValueError, "age=10"),
    (dict(diagnosis="MCI"), ValueError, "diagnosis"),
    (dict(spacing=0.0), ValueError, "spacing"),
    (dict(atlas="talairach"), ValueError, "unknown atlas"),
    (dict(noise_sd=-1.0), ValueError, "noise_sd"),
])
def test_bad_subject_arguments_raise(kwargs, error, match):
    args = dict(index=0, age=50.0, diagnosis="AD", spacing=3.0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        synthesize_subject(**args)


def test_bad_cohort_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="n_subjects"):
        cohort_table(0)
    with pytest.raises(ValueError, match="ad_fraction"):
        cohort_table(4, ad_fraction=1.5)
    with pytest.raises(FileNotFoundError, match="generate_cohort"):
        load_cohort(tmp_path / "nothing")


def test_aal3_names_resolve():
    names = read_atlas_names("aal3")
    ids = region_ids(names, AD_REGIONS["aal3"], "aal3")
    assert {names[i] for i in ids} >= {"Hippocampus_L", "Hippocampus_R", "Amygdala_L"}
    with pytest.raises(KeyError, match="not in the aal3 atlas"):
        region_ids(names, ["hippocampus"], "aal3")
