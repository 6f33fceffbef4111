"""The zB box follows where the scan has data, not where the normalised input is non-zero.

A card's normalisation may clip brain voxels to exactly 0: ``percentile`` the darkest ~1 % (in an AD
scan the most atrophied tissue), inverted ``scale`` the brightest ~1 %, a ``scale`` floor everything below
it. Such a voxel is brain, not background: its zB box must be the channel's range, not [0, 0] (which gives it
no relevance whatever the network reads there). Only voxels that are 0 in the scan itself (the background of
a skull-stripped scan, the outside of the scan) keep the box [0, 0].
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.preprocessing import box_bounds, box_keywords, prepare_input

#: normalisations that clip some brain voxels of SCAN to exactly 0
CLIPPING = {
    "percentile": {"type": "percentile", "low": 1.0, "high": 99.0, "mask": "nonzero"},
    "scale-invert": {"type": "scale", "high": 99.0, "mask": "nonzero", "invert": True},
    "scale-floor": {"type": "scale", "high": 99.0, "floor": 0.4, "mask": "nonzero"},
}
GRID = Grid.from_parts((12, 14, 16), (3.0, 3.0, 3.0), (-24.0, -21.0, -18.0))


def _scan() -> np.ndarray:
    """A skull-stripped 'brain' (an ellipsoid of varied tissue, 0 around it) on GRID."""
    k, j, i = np.mgrid[:12, :14, :16].astype(np.float32)
    r = np.sqrt(((i - 7.5) / 6.5) ** 2 + ((j - 6.5) / 5.5) ** 2 + ((k - 5.5) / 4.5) ** 2)
    tissue = 60 + 40 * np.sin(i / 1.7) * np.cos(j / 2.3) + 10 * k
    return np.where(r < 1, tissue, 0).astype(np.float32)


class _Card:
    """The input part of a model card, as prepare_input reads it."""

    def __init__(self, normalization: dict, spacing=(3.0, 3.0, 3.0), shape=(12, 14, 16)):
        self.input = type("Input", (), {"channels": ["T1"], "shape": shape, "spacing": spacing,
                                        "orientation": "RAS", "origin": None, "normalization": normalization})()


@pytest.mark.parametrize("name", sorted(CLIPPING))
def test_prepared_input_keeps_where_the_scan_has_data(name):
    """On the scan's own grid the support is exactly the scan's non-zero voxels, including brain voxels the
    normalisation clipped to 0 (there are some for each of these normalisations)."""
    scan = _scan()
    prepared = prepare_input([(scan, GRID)], _Card(CLIPPING[name]))
    x, support = prepared.array[0], prepared.support[0]
    np.testing.assert_array_equal(support, scan != 0)
    clipped = support & (x == 0)
    assert clipped.sum() >= 3, clipped.sum()


@pytest.mark.parametrize("name", sorted(CLIPPING))
def test_clipped_brain_voxels_get_the_channels_box_and_the_background_none(name):
    scan = _scan()
    spec = CLIPPING[name]
    prepared = prepare_input([(scan, GRID)], _Card(spec))
    x = prepared.array[None]
    low, high = box_bounds(x, spec, support=prepared.support)
    inside = scan != 0
    assert np.all(low[0, 0][~inside] == 0) and np.all(high[0, 0][~inside] == 0)
    assert np.all(low[0, 0][inside] == 0) and np.all(high[0, 0][inside] == x[0, 0].max())   # values in [0, 1]
    assert (low <= x).all() and (x <= high).all()


def _rotation(degrees_about_k: float, degrees_about_j: float) -> np.ndarray:
    a, b = np.radians(degrees_about_k), np.radians(degrees_about_j)
    about_k = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_j = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return about_k @ about_j


def _support_oracle(scan: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Independently of SimpleITK: a model voxel has data support when a scan voxel with a non-zero value has a
    non-zero weight in its trilinear interpolation (its centre mapped through both grids' IJK->RAS matrices)."""
    k, j, i = np.indices(target.shape_kji)
    centres = target.ijk_to_ras @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    index = (np.linalg.inv(source.ijk_to_ras) @ centres)[:3].T          # continuous (i, j, k) in the scan
    data = np.asarray(scan) != 0
    size = np.array(source.shape_ijk)
    base = np.floor(index).astype(int)
    frac = index - base
    out = np.zeros(len(index), bool)
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod(np.where(np.array(corner) == 1, frac, 1 - frac), axis=1)
        at = base + np.array(corner)
        inside = np.all((at >= 0) & (at < size), axis=1)
        hit = np.zeros(len(index), bool)
        hit[inside] = data[at[inside, 2], at[inside, 1], at[inside, 0]]
        out |= hit & (weight > 1e-6)
    return out.reshape(target.shape_kji)


def test_the_support_on_a_model_grid_matches_an_independent_interpolation_oracle():
    """An oblique, anisotropic scan (rotated 12 deg and 7 deg, 1.1 x 1.3 x 2.4 mm) onto the card's RAS grid: the
    support equals the oracle's (data voxels with a non-zero interpolation weight), up to voxels whose nearest
    data neighbour has a weight within 1e-6 of 0; some brain voxels are clipped to 0 and keep their support."""
    k, j, i = np.mgrid[:30, :44, :52].astype(np.float32)
    r = np.sqrt(((i - 25.5) / 21) ** 2 + ((j - 21.5) / 17) ** 2 + ((k - 14.5) / 9) ** 2)
    scan = np.where(r < 1, 60 + 40 * np.sin(i / 3.1) * np.cos(j / 2.7) + 3 * k, 0).astype(np.float32)
    source = Grid.from_parts(scan.shape, (1.1, 1.3, 2.4), (-30.0, -28.0, -33.0), _rotation(12.0, 7.0))
    spec = CLIPPING["percentile"]
    prepared = prepare_input([(scan, source)], _Card(spec, spacing=(3.5, 3.0, 4.0), shape=(18, 22, 20)))
    x, support = prepared.array[0], prepared.support[0]
    oracle = _support_oracle(scan, source, prepared.grid)
    assert oracle.sum() > 500 and (~oracle).sum() > 500
    assert (support != oracle).sum() <= 0.002 * support.size, (support != oracle).sum()
    assert (support & (x == 0)).sum() >= 3 and (oracle & (x == 0)).sum() >= 3   # clipped brain voxels kept
    low, high = box_bounds(x[None, None], spec, support=support)
    assert np.all(high[0, 0][oracle & support] == x.max()) and np.all(high[0, 0][~oracle & ~support] == 0)


def test_box_bounds_needs_the_support_stated():
    """Every caller says where the scan has data (a prepared input's ``support``), or None for an input whose
    zeros are its background; forgetting it cannot silently fall back."""
    x = np.ones((1, 1, 2, 2, 2), np.float32)
    with pytest.raises(TypeError):
        box_bounds(x, {"type": "zscore", "mask": "nonzero"})          # type: ignore[call-arg]
    assert box_keywords(x, {"type": "zscore"}, support=None) == {}


@pytest.mark.parametrize("card_name", ["ad_cnn", "brain_age_resnet"])
def test_a_run_gives_relevance_to_clipped_brain_voxels_and_none_to_the_background(scene, one_torch_thread,
                                                                                  card_name):
    """The product's run (RelevanceLogic, the card's recommended box preset) on a bundled card: the brain voxels
    the card's normalisation clipped to 0 get relevance, the scan's background none."""
    from NeuroRelevanceLib import mrml
    from NeuroRelevanceLib.demo.cohort import synthesize_subject
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    card = model_card_path(card_name)
    loaded = load_model(card, device="cpu")
    s = synthesize_subject(128, 80.0, "AD" if card_name == "ad_cnn" else "control", **generator_options(card))
    volume = mrml.array_to_volume(scene, s.image, s.grid, "subject")
    run = RelevanceLogic(scene).run([volume], loaded, preset="graph-deep-taylor")
    relevance = run.job.explanation.relevance[0].numpy()
    x, support = run.job.prepared.array, run.job.prepared.support
    clipped = support & (x == 0)
    assert clipped.sum() > 10
    assert np.abs(relevance[clipped]).sum() > 0
    assert np.abs(relevance[~support]).sum() == 0


def test_the_evidence_subjects_carry_the_support_and_their_maps_use_it():
    """pretrained.heldout subjects carry the scan's support, and the evidence's LRP maps give the clipped
    brain voxels relevance (the same box as a run)."""
    from NeuroRelevanceLib.explanation.dispatch import explain
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.evidence import _maps
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    card = model_card_path("ad_cnn")
    loaded = load_model(card, device="cpu")
    subject = next(held_out_subjects(card, split="test", diagnosis="AD", truth="ad"))
    clipped = subject.support & (subject.x == 0)
    assert clipped.sum() > 10
    maps, _, _ = _maps("ad_cnn", loaded, subject, ["lrp:graph-deep-taylor"])
    summed_clipped = clipped.any(0)
    assert np.abs(maps["lrp:graph-deep-taylor"][summed_clipped]).sum() > 0
    zb = box_keywords(subject.x[None], loaded.card.input.normalization, support=subject.support[None])
    direct = explain(loaded.model, torch.from_numpy(subject.x[None]), "lrp", preset="graph-deep-taylor",
                     device="cpu", target=1, **zb)
    np.testing.assert_allclose(maps["lrp:graph-deep-taylor"], direct.relevance[0].sum(0).double().numpy())
