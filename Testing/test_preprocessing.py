"""Scans into the model grid and back, checked against closed forms in physical space."""
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.models import card_from_dict
from NeuroRelevanceLib.preprocessing import (
    box_bounds,
    model_grid,
    normalize,
    orientation_directions,
    prepare_input,
    resample,
)


def _ras_of_voxels(grid):
    k, j, i = np.meshgrid(*[np.arange(n) for n in grid.shape_kji], indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], -1).astype(float)
    return (ijk1 @ grid.ijk_to_ras.T)[..., :3]


def _strictly_inside(points_ras, grid):
    """Points whose continuous index lies between the grid's first and last voxel centres
    (ITK interpolates linearly there; within half a voxel outside it clamps)."""
    ijk = (np.c_[points_ras.reshape(-1, 3), np.ones(points_ras[..., 0].size)]
           @ np.linalg.inv(grid.ijk_to_ras).T)[:, :3]
    upper = np.array(grid.shape_ijk) - 1
    return np.all((ijk >= 1e-6) & (ijk <= upper - 1e-6), axis=1).reshape(points_ras.shape[:-1])


def _linear_field(ras):
    return 0.5 * ras[..., 0] - 1.25 * ras[..., 1] + 2.0 * ras[..., 2] + 7.0


def test_linear_interpolation_is_exact_for_a_linear_field():
    source = oblique_grid(shape_kji=(30, 34, 38), spacing=(1.1, 0.9, 1.7))
    values = _linear_field(_ras_of_voxels(source)).astype(np.float32)
    target = model_grid(source, (10, 12, 14), (2.0, 2.0, 2.0), "LPS")
    out = resample(values, source, target)
    expected = _linear_field(_ras_of_voxels(target))
    inside = _strictly_inside(_ras_of_voxels(target), source)
    assert inside.mean() > 0.5
    assert np.allclose(out[inside], expected[inside], rtol=1e-4, atol=1e-2)


def test_model_grid_is_centred_and_oriented():
    source = oblique_grid()
    grid = model_grid(source, (8, 10, 12), (2.0, 3.0, 4.0), "RAS")

    def centre(g):
        return (g.ijk_to_ras @ np.r_[(np.array(g.shape_ijk) - 1) / 2, 1])[:3]

    assert np.allclose(centre(grid), centre(source))
    assert np.allclose(grid.directions, np.eye(3)) and np.allclose(grid.spacing, (2, 3, 4))
    fixed = model_grid(source, (8, 10, 12), (2, 2, 2), "RAS", origin=(-90, -126, -72))
    assert np.allclose(fixed.origin, (-90, -126, -72))
    assert np.allclose(orientation_directions("LPS"), np.diag([-1, -1, 1]))
    assert np.allclose(orientation_directions("ASR") @ [1, 0, 0], [0, 1, 0])
    with pytest.raises(InputError, match="axis code"):
        orientation_directions("RRS")


def test_normalizations():
    a = np.array([[[0.0, 2.0, 4.0, 6.0]]])
    z = normalize(a, {"type": "zscore", "mask": "nonzero"})
    assert z[0, 0, 0] == 0 and np.isclose(z[a != 0].mean(), 0) and np.isclose(z[a != 0].std(), 1)
    assert np.allclose(normalize(a, {"type": "minmax"}), a / 6)
    p = normalize(np.arange(101.0).reshape(1, 1, -1), {"type": "percentile", "low": 10, "high": 90})
    assert p.min() == 0 and p.max() == 1 and np.isclose(p[0, 0, 50], 0.5)
    with pytest.raises(InputError, match="all zeros"):
        normalize(np.zeros((2, 2, 2)), {"type": "zscore", "mask": "nonzero"})


def _card(channels=("T1", "FLAIR"), shape=(8, 8, 8)):
    return card_from_dict({"architecture": {"class": "UNet3d"}, "weights": "w.safetensors",
                           "input": {"channels": list(channels), "shape": list(shape),
                                     "spacing": [3, 3, 3], "normalization": {"type": "zscore"}},
                           "output": {"type": "segmentation"}})


def test_prepare_input_and_back():
    source = Grid.from_parts((20, 24, 28), (1.5, 1.5, 1.5), (-20, -18, -15))
    ras = _ras_of_voxels(source)
    t1 = _linear_field(ras).astype(np.float32)
    flair = (ras[..., 0] ** 2 / 100).astype(np.float32)
    prepared = prepare_input([(t1, source), (flair, source)], _card())
    assert prepared.array.shape == (2, 8, 8, 8) and prepared.array.dtype == np.float32
    # statistics from the scan's own grid (not the model grid's crop): the linear field interpolates exactly
    expected = (_linear_field(_ras_of_voxels(prepared.grid)) - t1.mean()) / t1.std()
    assert np.allclose(prepared.array[0], expected, atol=1e-4)
    back = prepared.to_source(prepared.array[0])
    assert back.shape == source.shape_kji
    # the z-scored linear field, interpolated back, is still linear in RAS: fit and check
    covered = _strictly_inside(ras, prepared.grid)
    design = np.c_[ras[covered], np.ones(covered.sum())]
    coef, residual, *_ = np.linalg.lstsq(design, back[covered], rcond=None)
    assert np.sqrt(residual[0] / covered.sum()) < 1e-3 * np.abs(back).max()


def test_prepare_input_errors():
    g = Grid.from_parts((4, 4, 4), (1, 1, 1), (0, 0, 0))
    other = Grid.from_parts((4, 4, 4), (1, 1, 1), (5, 0, 0))
    ones = np.ones((4, 4, 4), np.float32)
    with pytest.raises(InputError, match="takes 2 channel"):
        prepare_input([(ones, g)], _card())
    with pytest.raises(InputError, match="same grid"):
        prepare_input([(ones, g), (ones, other)], _card())
    with pytest.raises(InputError, match="NaN"):
        prepare_input([(ones, g), (np.full((4, 4, 4), np.nan), g)], _card())


def test_same_grid_keeps_exact_zeros_so_nonzero_statistics_do_not_shift():
    """A skull-stripped scan already on the model grid: interpolating at the voxel centres leaked ~1e-15
    into the zero background, and the 'nonzero' percentile then counted thousands of edge voxels."""
    grid = oblique_grid((12, 14, 10))
    rng = np.random.default_rng(0)
    brain = np.zeros(grid.shape_kji, bool)
    brain[2:10, 3:11, 2:8] = True
    scan = np.where(brain, rng.uniform(0.5, 1.5, grid.shape_kji), 0.0).astype(np.float32)
    out = resample(scan, grid, grid)
    np.testing.assert_array_equal(out, scan)
    spec = {"type": "percentile", "low": 1.0, "high": 99.0, "mask": "nonzero"}
    np.testing.assert_array_equal(normalize(out, spec), normalize(scan, spec))


def test_zb_box_pins_masked_zeros_so_they_get_no_relevance():
    """A 'nonzero'-masked input keeps its zeros at 0: their zB box is [0, 0] and deep Taylor's input rule
    gives them nothing (with the input's range as the box they take a share of the relevance)."""
    import torch

    from NeuroRelevanceLib.engine import explain
    from NeuroRelevanceLib.nets import build
    from NeuroRelevanceLib.preprocessing import box_bounds

    rng = np.random.default_rng(0)
    x = np.zeros((1, 2, 8, 8, 8), np.float32)
    x[:, 0, 2:6, 2:6, 2:6] = rng.uniform(0.2, 1.0, (4, 4, 4))
    x[:, 1, 3:7, 2:6, 2:6] = rng.uniform(-1.0, 2.0, (4, 4, 4))
    low, high = box_bounds(x, {"type": "zscore", "mask": "nonzero"}, support=None)
    inside = x != 0
    assert (low[~inside] == 0).all() and (high[~inside] == 0).all()
    assert np.allclose(low[0, 0][inside[0, 0]], 0.0) and np.allclose(high[0, 0][inside[0, 0]], x[0, 0].max())
    assert np.allclose(low[0, 1][inside[0, 1]], x[0, 1].min()) and (low <= x).all() and (x <= high).all()
    assert box_bounds(x, {"type": "zscore"}, support=None) is None
    net = build("DeepTaylorCNN", seed=0, in_channels=2, n_outputs=2, channels=[3, 4]).double().eval()
    xt = torch.from_numpy(x).double()
    target = int(net(xt)[0].argmax())      # a positive logit, as deep Taylor explains
    boxed = explain(net, xt, preset="epsilon-gamma-box", target=target, dtype=torch.float64,
                    low=torch.from_numpy(low).double(), high=torch.from_numpy(high).double())
    assert boxed.relevance[torch.from_numpy(~inside)].abs().max() == 0 and boxed.relevance.abs().sum() > 0
    ranged = explain(net, xt, preset="epsilon-gamma-box", target=target, dtype=torch.float64, low=-1.0, high=2.0)
    assert ranged.relevance[torch.from_numpy(~inside)].abs().sum() > 0


def test_scale_normalisation_anchors_at_raw_zero_so_tissue_composition_does_not_move_it():
    """'scale' divides by the `high` percentile and clips to [0, 1]: a raw 0 stays 0, so adding dark voxels
    (more CSF) leaves every other voxel's value alone, where 'percentile' moves them all (its low anchor)."""
    rng = np.random.default_rng(0)
    tissue = rng.uniform(0.6, 1.0, 1000)
    more_csf = np.concatenate([tissue, np.full(300, 0.3)])
    spec = {"type": "scale", "high": 99.0, "mask": "nonzero"}
    a, b = normalize(tissue, spec), normalize(more_csf, spec)
    assert np.allclose(a, b[:1000], atol=2e-3)              # the anchor is in the bright tissue
    assert a.min() >= 0 and a.max() == 1 and np.isclose(a, np.clip(tissue / np.percentile(tissue, 99), 0, 1)).all()
    p = {"type": "percentile", "low": 1.0, "high": 99.0, "mask": "nonzero"}
    assert np.abs(normalize(tissue, p) - normalize(more_csf, p)[:1000]).max() > 0.1   # the lever it removes
    with_background = normalize(np.array([0.0, 0.0, 0.5, 1.0]), spec)   # negative values: refused (below)
    assert with_background[0] == 0 and with_background[1] == 0
    assert with_background.min() >= 0
    assert np.isclose(normalize(np.array([0.0, 2.0, 4.0]), {"type": "scale", "high": 100.0})[1], 0.5)


def test_scale_normalisation_keeps_the_zb_box_exact():
    """Its values lie in [0, 1] with the background at 0, so box_bounds gives [0, 1] inside the brain."""
    x = normalize(np.array([[[0.0, 0.4, 0.8, 1.2]]]), {"type": "scale", "high": 50.0, "mask": "nonzero"})
    lo, hi = box_bounds(x[None, None], {"type": "scale", "mask": "nonzero"}, support=None)
    assert lo[0, 0, 0, 0, 0] == 0 and hi[0, 0, 0, 0, 0] == 0
    assert (lo[0, 0][x != 0] == 0).all() and (hi[0, 0][x != 0] == 1).all()


def test_scale_floor_maps_a_fixed_fraction_of_the_high_anchor_to_zero():
    """'floor' f: x / top below f goes to 0 and [f, 1] stretches to [0, 1] -- a window fixed relative to the bright
    tissue, so dark voxels (CSF) sit near 0 as with 'percentile', yet their share still moves nothing."""
    rng = np.random.default_rng(1)
    tissue = rng.uniform(0.6, 1.0, 1000)
    spec = {"type": "scale", "high": 99.0, "floor": 0.4, "mask": "nonzero"}
    top = np.percentile(tissue, 99)
    assert np.allclose(normalize(tissue, spec), np.clip((tissue / top - 0.4) / 0.6, 0, 1), atol=1e-6)
    more_csf = np.concatenate([tissue, np.full(300, 0.3)])
    assert np.allclose(normalize(more_csf, spec)[:1000], normalize(tissue, spec), atol=2e-3)
    assert (normalize(more_csf, spec)[1000:] == 0).all()


def test_scale_invert_turns_dark_tissue_bright_and_keeps_the_background_at_zero():
    """'invert': 1 - the scaled value inside the data (CSF bright, white matter dark); outside stays 0."""
    a = np.array([0.0, 0.3, 0.6, 1.0, 0.0])
    plain = normalize(a, {"type": "scale", "high": 100.0, "floor": 0.25, "mask": "nonzero"})
    inverted = normalize(a, {"type": "scale", "high": 100.0, "floor": 0.25, "mask": "nonzero", "invert": True})
    assert inverted[0] == 0 and inverted[-1] == 0
    assert np.allclose(inverted[1:4], 1 - plain[1:4]) and inverted[1] > inverted[2] > inverted[3]


@pytest.mark.parametrize("shift", [-200.0, -2000.0])
def test_scale_normalisation_refuses_negative_intensities(shift):
    """'scale' takes a raw 0 as "no signal": a scan with negative values (an offset, a standardised image) would
    be fed as another brain (a control aged 78 read as 123 or 253 years). Refused, naming the cause and fix."""
    from NeuroRelevanceLib.errors import InputError

    brain = np.zeros((6, 6, 6), np.float32)
    brain[1:5, 1:5, 1:5] = np.linspace(100.0, 400.0, 64).reshape(4, 4, 4) + shift
    with pytest.raises(InputError, match=r"negative.*scale.*0 means no signal") as info:
        normalize(brain, {"type": "scale", "high": 99.0, "mask": "nonzero", "invert": True})
    assert "percentile" in str(info.value)


@pytest.mark.parametrize("spec", [{"type": "scale", "mask": "nonzero", "invert": True},
                                  {"type": "percentile", "mask": "nonzero"}, {"type": "zscore"}])
def test_a_constant_scan_is_refused_as_constant(spec):
    """A constant image has nothing to explain; the refusal says so (not 'nothing reached the input')."""
    from NeuroRelevanceLib.errors import InputError

    with pytest.raises(InputError, match="constant"):
        normalize(np.full((4, 4, 4), 7.0, np.float32), spec)


def test_scale_accepts_the_small_negative_ringing_of_a_spline_resampled_scan():
    """B-spline or windowed-sinc resampling (SPM normalise, ANTs, SimpleITK) leaves a few small negative values
    at the brain's edge: not an offset. They are clipped like any value below the anchor, not refused."""
    rng = np.random.default_rng(0)
    brain = np.zeros((20, 20, 20), np.float32)
    brain[2:18, 2:18, 2:18] = rng.uniform(100.0, 400.0, (16, 16, 16))
    edge = np.argwhere(brain > 0)[: int(0.005 * (brain > 0).sum())]
    brain[tuple(edge.T)] = -20.0                       # 0.5 % of the data voxels, 5 % of the top below zero
    spec = {"type": "scale", "high": 99.0, "mask": "nonzero", "invert": True}
    out = normalize(brain, spec)
    assert np.all(out[tuple(edge.T)] == 1.0) and out.min() >= 0 and out.max() <= 1


def test_a_multichannel_refusal_names_the_channel():
    """A constant channel of a four-channel lesion card is refused, naming that channel."""
    from NeuroRelevanceLib.demo.lesions import synthesize_lesion_subject
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.preprocessing import prepare_input
    from NeuroRelevanceLib.pretrained import model_card_path

    card = read_card(model_card_path("lesion_unet"))
    s = synthesize_lesion_subject(0, spacing=4.0, seed=0, channels=list(card.input.channels))
    channels = [c.copy() for c in s.channels]
    channels[3] = np.where(s.brain, 2.0, 0.0).astype(np.float32)      # Tmax constant inside the brain
    with pytest.raises(InputError, match=r"Channel 'Tmax'.*constant"):
        prepare_input([(c, s.grid) for c in channels], card)
