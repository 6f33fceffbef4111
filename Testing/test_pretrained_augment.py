"""Training-time intensity jitter of the brain-age model (pretrained.training.jitter_intensity).

Why it exists: the percentile normalisation's low percentile falls in CSF, and ventricle growth adds CSF, so
the normalised intensity of *every* brain voxel rises with age; a network can read age from anywhere in the
brain. A random global affine map per training scan makes that shift useless as evidence.
"""
from __future__ import annotations

import numpy as np
import torch

from NeuroRelevanceLib.preprocessing import normalize
from NeuroRelevanceLib.pretrained.data import T1_NORMALIZATION
from NeuroRelevanceLib.pretrained.training import jitter_intensity


def _batch() -> torch.Tensor:
    x = torch.zeros(3, 1, 6, 6, 6)
    x[:, :, 1:5, 1:5, 1:5] = torch.rand(3, 1, 4, 4, 4) * 0.8 + 0.1
    return x


def test_jitter_is_one_affine_map_per_scan_and_keeps_the_background():
    x, y = _batch(), torch.arange(3.0)
    out, y2 = jitter_intensity(0.1)(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(y2, y)
    assert torch.equal(out[x == 0], x[x == 0])                       # background stays exactly 0
    for xi, oi in zip(x, out, strict=True):
        inside = xi != 0
        a = np.polyfit(xi[inside].numpy(), oi[inside].numpy(), 1)    # an exact line per scan
        assert np.allclose(np.polyval(a, xi[inside].numpy()), oi[inside].numpy(), atol=1e-6)
        assert abs(a[0] - 1) <= 0.1 + 1e-6 and abs(a[1]) <= 0.1 + 1e-6
    slopes = {round(float(np.polyfit(xi[xi != 0].numpy(), oi[xi != 0].numpy(), 1)[0]), 5)
              for xi, oi in zip(x, out, strict=True)}
    assert len(slopes) == 3                                          # a fresh draw per scan


def test_jitter_is_reproducible_from_the_generator_seed():
    x, y = _batch(), torch.zeros(3)
    a = jitter_intensity(0.1)(x, y, torch.Generator().manual_seed(5))[0]
    b = jitter_intensity(0.1)(x, y, torch.Generator().manual_seed(5))[0]
    c = jitter_intensity(0.1)(x, y, torch.Generator().manual_seed(6))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_more_csf_shifts_every_normalised_tissue_voxel():
    """The finding behind the jitter, on a closed-form scan: adding CSF voxels (ventricle growth) lowers
    the 1st percentile and so raises the normalised value of unchanged grey matter."""
    rng = np.random.default_rng(0)
    tissue = np.concatenate([np.full(900, 0.7), np.full(1000, 1.0)]) + rng.normal(0, 0.01, 1900)
    young = np.concatenate([tissue, np.full(10, 0.3) + rng.normal(0, 0.01, 10)])
    old = np.concatenate([tissue, np.full(100, 0.3) + rng.normal(0, 0.01, 100)])
    gm_young = normalize(young, T1_NORMALIZATION)[:900].mean()
    gm_old = normalize(old, T1_NORMALIZATION)[:900].mean()
    assert gm_old > gm_young + 0.05
