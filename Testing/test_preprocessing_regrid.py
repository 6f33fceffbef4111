"""The same brain on another grid gets the same prediction: normalisation statistics come from the scan's own
grid (its own non-zero voxels), not from the interpolated rim after resampling onto the model grid."""
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from NeuroRelevanceLib.geometry import array_to_sitk, grid_from_sitk
from NeuroRelevanceLib.preprocessing import box_bounds, prepare_input


def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return r


def _oblique_copy(image, spacing=(1.5, 2.5, 3.5), angles=((2, 12.0), (0, 20.0)), interpolator=sitk.sitkLinear):
    """An oblique (12° about z, 20° about x), anisotropic copy of ``image`` made by SimpleITK in physical space."""
    direction = np.eye(3)
    for axis, degrees in angles:
        direction = direction @ _rotation(axis, degrees)
    spacing = np.asarray(spacing, float)
    extent = np.array(image.GetSize()) * np.array(image.GetSpacing())
    size = [int(np.ceil(e * 1.15 / s)) for e, s in zip(extent, spacing, strict=True)]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(spacing.tolist())
    reference.SetDirection(direction.flatten().tolist())
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()]))
    reference.SetOrigin((centre - direction @ ((np.array(size) - 1) * spacing / 2)).tolist())
    return sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), reference, sitk.Transform(), interpolator, 0.0)


def _held_out_ad(spacing: float | None = None):
    from NeuroRelevanceLib.demo.cohort import cohort_table, synthesize_subject
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.heldout import generator_options, held_out_indices

    path = model_card_path("ad_cnn")
    table = cohort_table(160, seed=0)
    index = next(i for i in held_out_indices(path) if table.iloc[i]["diagnosis"] == "AD")
    row = table.iloc[index]
    options = generator_options(path)
    if spacing is not None:
        options["spacing"] = spacing
    return synthesize_subject(index, float(row["age"]), "AD", **options)


@pytest.fixture(scope="module")
def loaded():
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained import model_card_path

    torch.set_num_threads(1)
    return load_model(model_card_path("ad_cnn"))


@pytest.fixture(scope="module")
def fine():
    """The first held-out AD subject of ad_cnn's cohort, generated at 2 mm (the card's grid is 4 mm)."""
    return _held_out_ad(2.0)


def _probabilities(loaded, channels):
    prepared = prepare_input(channels, loaded.card)
    with torch.no_grad():
        return torch.softmax(loaded.model(torch.from_numpy(prepared.array[None])), 1)[0].numpy(), prepared


def test_a_finer_scan_is_fed_like_the_same_brain_on_the_model_grid(loaded, fine):
    """The same held-out brain at 2 mm and at the card's 4 mm: same class, probabilities within 0.1.

    Before the fix the 2 mm scan was resampled first and normalised after: p(AD) 0.50 against 0.80."""
    p_model_grid, _ = _probabilities(loaded, [(_held_out_ad().image, _held_out_ad().grid)])
    p_fine, prepared = _probabilities(loaded, [(fine.image, fine.grid)])
    assert p_model_grid.argmax() == 1, p_model_grid
    assert p_fine.argmax() == 1, p_fine
    assert np.abs(p_fine - p_model_grid).max() < 0.1, (p_model_grid, p_fine)
    # the 'nonzero' mask survives: voxels outside the resampled brain stay exactly 0, and zB pins them to [0, 0]
    x, support = prepared.array, prepared.support
    assert (x == 0).sum() > 0.3 * x.size and (~support).sum() > 0.3 * x.size and support[x != 0].all()
    low, high = box_bounds(x[None], loaded.card.input.normalization, support=support)
    assert np.all(low[0][~support] == 0) and np.all(high[0][~support] == 0)
    assert np.all(high[0][support] == x.max())   # brain voxels clipped to 0 too: tissue, not background


def test_an_oblique_anisotropic_copy_with_a_sharp_edge_keeps_the_prediction(loaded, fine):
    """An oblique 1.5×2.5×3.5 mm copy (SimpleITK, nearest neighbour: the brain edge stays sharp) of the 2 mm scan."""
    p_fine, _ = _probabilities(loaded, [(fine.image, fine.grid)])
    copy = _oblique_copy(array_to_sitk(fine.image.astype(np.float32), fine.grid), (1.5, 2.5, 3.5),
                         interpolator=sitk.sitkNearestNeighbor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_copy, _ = _probabilities(loaded, [(sitk.GetArrayFromImage(copy), grid_from_sitk(copy))])
    assert p_copy.argmax() == p_fine.argmax(), (p_fine, p_copy)
    assert np.abs(p_copy - p_fine).max() < 0.15, (p_fine, p_copy)


@pytest.mark.xfail(strict=True, reason="known limit: a linear copy of a skull-stripped scan grows a partial-volume "
                   "rim (12 % of its non-zero voxels below the brain's 1st percentile) that the card's 'nonzero' "
                   "mask counts as brain on the scan's own grid; no rim detector separated it from the bundled "
                   "cards' own sharp scans (brain_age_resnet's have 8 %)")
def test_a_linear_oblique_copy_keeps_the_prediction(loaded, fine):
    p_fine, _ = _probabilities(loaded, [(fine.image, fine.grid)])
    copy = _oblique_copy(array_to_sitk(fine.image.astype(np.float32), fine.grid), (1.5, 2.5, 3.5))
    p_copy, _ = _probabilities(loaded, [(sitk.GetArrayFromImage(copy), grid_from_sitk(copy))])
    assert p_copy.argmax() == p_fine.argmax(), (p_fine, p_copy)


def test_scans_on_the_model_grid_are_fed_bit_identically(loaded):
    """The card evidence depends on it: on the model grid the input is the normalised scan, bit for bit."""
    from NeuroRelevanceLib.preprocessing import normalize

    subject = _held_out_ad()
    prepared = prepare_input([(subject.image, subject.grid)], loaded.card)
    assert subject.grid.same_as(prepared.grid, atol=1e-6)
    assert np.array_equal(prepared.array[0], normalize(subject.image, loaded.card.input.normalization))


def test_normalisation_uses_the_scan_grid_statistics(loaded, fine):
    """Oracle: percentile statistics over the scan's own non-zero voxels, applied, then resampled by SimpleITK."""
    spec = loaded.card.input
    image = array_to_sitk(fine.image.astype(np.float32), fine.grid)
    array = sitk.GetArrayFromImage(image)
    lo, hi = np.percentile(array[array != 0], [1.0, 99.0])
    normalised = np.where(array != 0, np.clip((array - lo) / (hi - lo), 0, 1), 0).astype(np.float32)
    prepared = prepare_input([(array, fine.grid)], loaded.card)
    reference = array_to_sitk(np.zeros(prepared.grid.shape_kji, np.float32), prepared.grid)
    moving = array_to_sitk(normalised, fine.grid)
    expected = sitk.GetArrayFromImage(sitk.Resample(moving, reference, sitk.Transform(), sitk.sitkLinear, 0.0))
    assert spec.normalization["type"] == "percentile"
    np.testing.assert_allclose(prepared.array[0], expected, atol=1e-6)
