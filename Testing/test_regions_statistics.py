"""Region statistics against closed forms: densities, fractions, ranks, gains, pooling, input forms."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.regions import Atlas
from volumes import atlas_ijk, kji, sitk_ijk

SPACING = (1.5, 1.0, 2.0)
AFFINE = np.diag([*SPACING, 1.0])
AFFINE[:3, 3] = (-12.0, 7.0, 3.0)
NAMES = {1: "Hippocampus_L", 2: "Hippocampus_R", 3: "Amygdala_L", 4: "Amygdala_R", 7: "Vermis"}


def toy_labels() -> np.ndarray:
    """A 12×10×8 label map: four blocks for ids 1–4, a slab for 7, background elsewhere."""
    labels = np.zeros((12, 10, 8), dtype=np.int16)
    labels[0:5, 0:5, 0:4] = 1
    labels[6:11, 0:5, 0:4] = 2
    labels[0:4, 5:10, 4:8] = 3
    labels[6:12, 5:8, 4:8] = 4
    labels[:, :, 7] = np.where(labels[:, :, 7] == 0, 7, labels[:, :, 7])
    return labels


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    return atlas_ijk(toy_labels(), AFFINE, NAMES, name="toy")


def test_indicator_of_one_region_gives_density_one_and_all_the_positive_fraction(atlas):
    labels = toy_labels()
    heat = (labels == 3).astype(np.float32)
    table = region_statistics(kji(heat, AFFINE), atlas, min_region_mm3=0).set_index("label")
    voxel_volume = np.prod(SPACING)
    assert table.loc[3, "density"] == 1.0
    assert table.loc[3, "fraction_pos"] == 1.0
    assert table.loc[3, "sum"] == table.loc[3, "voxels"] == np.count_nonzero(labels == 3)
    assert table.loc[3, "rank"] == 1
    others = table.drop(index=3)
    assert (others["density"] == 0).all() and (others["fraction_pos"] == 0).all()
    assert (others["rank"] == 2).all()  # ties share the smallest rank
    for label in NAMES:
        assert table.loc[label, "voxels"] == np.count_nonzero(labels == label)
        assert table.loc[label, "volume_mm3"] == pytest.approx(table.loc[label, "voxels"] * voxel_volume)
        assert table.loc[label, "name"] == NAMES[label]


def test_signed_sums_match_direct_masks_and_fraction_counts_relevance_outside_the_atlas(atlas):
    labels = toy_labels()
    rng = np.random.default_rng(3)
    heat = rng.normal(size=labels.shape)
    table = region_statistics(kji(heat, AFFINE), atlas, min_overlap=0.0, min_region_mm3=0).set_index("label")
    total_pos = heat[heat > 0].sum()
    for label in NAMES:
        values = heat[labels == label]
        assert table.loc[label, "sum"] == pytest.approx(values.sum(), rel=1e-12, abs=1e-12)
        assert table.loc[label, "sum_pos"] == pytest.approx(values[values > 0].sum(), rel=1e-12)
        assert table.loc[label, "sum_neg"] == pytest.approx(values[values < 0].sum(), rel=1e-12)
        assert table.loc[label, "density"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
        assert table.loc[label, "fraction_pos"] == pytest.approx(values[values > 0].sum() / total_pos, rel=1e-12)
    outside = heat[labels == 0]
    assert table.attrs["fraction_pos_outside_atlas"] == pytest.approx(outside[outside > 0].sum() / total_pos)
    ranks = table.sort_values("density", ascending=False)["rank"].to_numpy()
    assert ranks.tolist() == [1, 2, 3, 4, 5]


def test_rows_come_sorted_by_rank_and_rank_by_picks_the_metric(atlas):
    labels = toy_labels()
    heat = np.where(labels == 7, 1.0, 0.0) + np.where(labels == 1, 0.5, 0.0)
    by_density = region_statistics(kji(heat, AFFINE), atlas, rank_by="density")
    assert by_density["label"].tolist()[:2] == [7, 1]
    by_sum = region_statistics(kji(heat, AFFINE), atlas, rank_by="sum")
    expected = sorted([7, 1], key=lambda lab: -heat[labels == lab].sum())
    assert by_sum["label"].tolist()[:2] == expected


def test_group_means_and_gains_against_a_reference_group(atlas):
    labels = toy_labels()
    inside = {1: labels == 1, 3: labels == 3}
    group_levels = [(2.0, 1.0), (4.0, 3.0), (6.0, 2.0)]      # (value in region 1, value in region 3)
    reference_levels = [(1.0, 2.0), (3.0, 2.0)]
    def heat(level):
        return kji((level[0] * inside[1] + level[1] * inside[3]).astype(float), AFFINE)
    group = [heat(level) for level in group_levels]
    reference = [heat(level) for level in reference_levels]
    table = region_statistics(group, atlas, reference=reference).set_index("label")
    n1, n3 = inside[1].sum(), inside[3].sum()
    ref1 = np.mean([level[0] for level in reference_levels]) * n1
    ref3 = np.mean([level[1] for level in reference_levels]) * n3
    assert table.loc[1, "sum"] == pytest.approx(np.mean([level[0] for level in group_levels]) * n1)
    assert table.loc[1, "reference_sum"] == pytest.approx(ref1)
    assert table.loc[3, "sum"] == pytest.approx(np.mean([level[1] for level in group_levels]) * n3)
    assert table.loc[3, "reference_sum"] == pytest.approx(ref3)
    assert table.loc[3, "gain"] == pytest.approx(table.loc[3, "sum"] / ref3)   # G_a = mean S_a / mean ref S_a
    assert table.loc[1, "gain"] == pytest.approx(4.0 / 2.0)
    assert table.loc[3, "gain"] == pytest.approx(2.0 / 2.0)
    assert np.isnan(table.loc[2, "gain"])  # no reference relevance there: gain undefined, not infinite
    assert table.attrs["n_subjects"] == 3 and table.attrs["n_reference"] == 2

    long = region_statistics(group, atlas, reference=reference, per_subject=True)
    region1 = long[(long["label"] == 1) & (long["group"] == "group")]
    assert region1["gain"].to_numpy() == pytest.approx([2.0 / 2.0, 4.0 / 2.0, 6.0 / 2.0])
    assert region1["subject"].nunique() == 3
    assert (long["group"] == "reference").sum() == 2 * len(NAMES)
    assert np.mean(region1["gain"]) == pytest.approx(table.loc[1, "gain"])
    for subject, rows in long.groupby("subject"):
        assert sorted(rows["rank"]) == rows["rank"].tolist(), subject  # ranked within each subject
        assert rows.iloc[0]["label"] in (1, 3)


def test_single_heatmap_against_a_reference_gets_its_own_gain(atlas):
    labels = toy_labels()
    heat = 3.0 * (labels == 4)
    reference = 1.5 * (labels == 4) + 1.0 * (labels == 1)
    table = region_statistics(kji(heat, AFFINE), atlas, reference=kji(reference, AFFINE)).set_index("label")
    assert table.loc[4, "gain"] == pytest.approx(2.0)
    assert table.loc[1, "gain"] == 0.0


def test_pooling_adds_left_and_right_by_name(atlas):
    labels = toy_labels()
    rng = np.random.default_rng(5)
    heat = rng.uniform(0.1, 1.0, size=labels.shape)
    plain = region_statistics(kji(heat, AFFINE), atlas, min_overlap=0).set_index("label")
    pooled = region_statistics(kji(heat, AFFINE), atlas, pool_hemispheres=True, min_overlap=0).set_index("name")
    assert sorted(pooled.index) == ["Amygdala", "Hippocampus", "Vermis"]
    assert pooled.loc["Hippocampus", "labels"] == "1;2"
    for name, (left, right) in {"Hippocampus": (1, 2), "Amygdala": (3, 4)}.items():
        for column in ("voxels", "sum", "sum_pos", "sum_neg", "fraction_pos", "volume_mm3"):
            assert pooled.loc[name, column] == pytest.approx(plain.loc[left, column] + plain.loc[right, column])
        mask = (labels == left) | (labels == right)
        assert pooled.loc[name, "density"] == pytest.approx(heat[mask].mean())
    assert pooled.loc["Vermis", "sum"] == pytest.approx(plain.loc[7, "sum"])


def test_every_input_form_and_memory_order_gives_the_same_table(atlas, tmp_path):
    labels = toy_labels()
    heat = np.random.default_rng(9).normal(size=labels.shape).astype(np.float32)
    expected = region_statistics(kji(heat, AFFINE), atlas, min_overlap=0)
    image = nib.Nifti1Image(heat, AFFINE)
    nib.save(image, tmp_path / "heat.nii.gz")
    sitk.WriteImage(sitk_ijk(heat, AFFINE), str(tmp_path / "heat.nrrd"))
    forms = [kji(np.asfortranarray(heat), AFFINE), kji(heat.astype(np.float64), AFFINE), image,
             tmp_path / "heat.nii.gz", str(tmp_path / "heat.nrrd"), sitk_ijk(heat, AFFINE),
             nib.Nifti1Image(heat[..., None], AFFINE)]
    for form in forms:
        table = region_statistics(form, atlas, min_overlap=0)
        assert table["label"].tolist() == expected["label"].tolist()
        np.testing.assert_allclose(table["sum"], expected["sum"], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(table["voxels"], expected["voxels"])


def test_inputs_are_left_untouched(atlas):
    labels = toy_labels()
    heat = np.random.default_rng(2).normal(size=labels.shape)
    before, affine_before = heat.copy(), AFFINE.copy()
    region_statistics(kji(heat, AFFINE), atlas, min_overlap=0, pool_hemispheres=True)
    np.testing.assert_array_equal(heat, before)
    np.testing.assert_array_equal(AFFINE, affine_before)


def test_empty_regions_get_no_density_and_rank_last():
    labels = toy_labels()
    affine = AFFINE.copy()
    atlas = atlas_ijk(labels, affine, NAMES)
    # a heatmap grid covering only the lower half in k: ids 3, 4 (k >= 4) are not on it except slab 7
    heat = np.ones((12, 10, 3))
    table = region_statistics(kji(heat, affine), atlas, min_overlap=0.1).set_index("label")
    assert table.loc[3, "voxels"] == 0 and np.isnan(table.loc[3, "density"])
    assert table.loc[3, "rank"] == table["rank"].max()


def test_extreme_float32_values_and_float16_maps_are_summed_correctly(atlas):
    labels = toy_labels()
    heat = np.zeros(labels.shape, dtype=np.float32)
    heat[labels == 1] = 3e38  # float32 block sums overflow; the totals are redone in float64
    table = region_statistics(kji(heat, AFFINE), atlas).set_index("label")
    assert table.loc[1, "sum"] == pytest.approx(3e38 * np.count_nonzero(labels == 1), rel=1e-6)
    assert table.loc[1, "fraction_pos"] == pytest.approx(1.0)
    half = (labels == 2).astype(np.float16) * np.float16(0.5)
    table = region_statistics(kji(half, AFFINE), atlas).set_index("label")
    assert table.loc[2, "density"] == 0.5 and table.loc[2, "fraction_pos"] == 1.0


def test_regions_below_the_minimum_size_are_listed_but_not_ranked(atlas):
    labels = toy_labels()
    counts = {label: int(np.count_nonzero(labels == label)) for label in NAMES}
    smallest = min(counts, key=counts.get)
    heat = np.where(labels > 0, 0.1, 0.0) + 5.0 * (labels == smallest)  # the smallest region is the densest
    limit = sorted(counts.values())[1]  # every region but the smallest is big enough
    table = region_statistics(kji(heat, AFFINE), atlas, min_region_voxels=limit, min_region_mm3=0)
    assert len(table) == len(NAMES)  # still listed
    small = table.set_index("label").loc[smallest]
    assert not small["ranked"] and small["rank"] == len(NAMES)  # after the four ranked ones
    assert table["ranked"].tolist() == [True] * (len(NAMES) - 1) + [False]
    assert table.loc[0, "rank"] == 1 and table.loc[0, "label"] != smallest
    mm3 = region_statistics(kji(heat, AFFINE), atlas, min_region_voxels=0,
                            min_region_mm3=limit * float(np.prod(SPACING)) - 1e-6)
    assert mm3["ranked"].tolist() == table["ranked"].tolist()
    assert table.attrs["min_region_voxels"] == limit and table.attrs["grid"] == "12×10×8 voxels of 1.5×1×2 mm"
    everything = region_statistics(kji(heat, AFFINE), atlas, min_region_voxels=0, min_region_mm3=0)
    assert everything.loc[0, "label"] == smallest and everything["ranked"].all()
    with pytest.raises(Exception, match="minimum region size"):
        region_statistics(kji(heat, AFFINE), atlas, min_region_voxels=-1)


def _centred_logit_controls(labels: np.ndarray, rng: np.random.Generator) -> tuple[list, list]:
    """Patients explained for "AD" put relevance in regions 1 and 3 (most in 1); controls explained for
    "AD" with centred logits have a negative logit, so their relevance sums are negative in every region
    (with positive and negative voxels)."""
    def heat(base: float, r1: float, r3: float, noise: float):
        h = base + r1 * (labels == 1) + r3 * (labels == 3) + noise * rng.normal(size=labels.shape)
        return kji(h * (labels > 0), AFFINE)
    patients = [heat(0.02, 1.0 * s, 0.4 * s, 0.01) for s in (1.0, 1.2, 0.9)]
    controls = [heat(-0.15, 0.0, 0.0, 0.3) for _ in range(3)]
    return patients, controls


def test_gain_against_controls_with_negative_relevance_does_not_invert(atlas):
    """Finding: with a reference whose relevance sum is negative, the signed gain S/S_ref is negative
    everywhere and the region the patients' relevance points to ranks last. Gain is on R+ instead."""
    labels = toy_labels()
    patients, controls = _centred_logit_controls(labels, np.random.default_rng(0))
    table = region_statistics(patients, atlas, reference=controls, rank_by="gain", min_region_mm3=0)
    assert (table["reference_sum"] < 0).all()                # the signed reference sums are negative
    ranked = table[table.ranked]
    assert ranked.iloc[0]["label"] == 1                      # the patients' strongest region leads
    assert (ranked["gain"] >= 0).all()
    assert table.attrs["gain_on"] == "positive relevance (R+)"
    by_label = table.set_index("label")
    pos = [np.clip(h, 0, None)[labels.T == 1].sum() for h, _ in patients]
    ref = [np.clip(h, 0, None)[labels.T == 1].sum() for h, _ in controls]
    assert by_label.loc[1, "gain"] == pytest.approx(np.mean(pos) / np.mean(ref))
    assert by_label.loc[1, "reference_sum_pos"] == pytest.approx(np.mean(ref))


def test_region_without_positive_reference_relevance_gets_no_gain_and_a_reason(atlas):
    labels = toy_labels()
    patients = [kji(1.0 * (labels == 1) + 0.5 * (labels == 4), AFFINE)]
    controls = [kji(-1.0 * (labels == 4) + 0.2 * (labels == 1), AFFINE)]   # region 4: reference sum < 0
    for gain_on in ("positive", "absolute"):
        table = region_statistics(patients, atlas, reference=controls, gain_on=gain_on).set_index("label")
        if gain_on == "positive":
            assert np.isnan(table.loc[4, "gain"]) and "no positive relevance" in table.loc[4, "gain_note"]
            assert table.loc[1, "gain"] == pytest.approx(1.0 / 0.2) and table.loc[1, "gain_note"] == ""
        else:   # |R|: region 4 has reference relevance again, of either sign
            assert table.loc[4, "gain"] == pytest.approx(0.5) and table.attrs["gain_on"] == "absolute relevance (|R|)"
        assert np.isnan(table.loc[7, "gain"]) and "no " in table.loc[7, "gain_note"]
    long = region_statistics(patients, atlas, reference=controls, per_subject=True).set_index("label")
    assert np.isnan(long.loc[4, "gain"]).all() and (long.loc[4, "gain_note"] != "").all()
    with pytest.raises(ValueError, match="gain_on"):
        region_statistics(patients, atlas, reference=controls, gain_on="signed")
