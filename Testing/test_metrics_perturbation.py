"""Region perturbation and AOPC against the closed form of a linear model, where the best order is known."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.metrics import aopc, region_perturbation

torch.set_num_threads(1)
D = torch.float64
SHAPE = (4, 4, 6)


class LinearNet(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.fc = nn.Linear(int(np.prod(SHAPE)), 2)
        torch.manual_seed(seed)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def setup():
    net = LinearNet().double()
    x = torch.randn(2, 1, *SHAPE, generator=torch.Generator().manual_seed(1), dtype=D)
    w = net.fc.weight.detach()[1].reshape(1, *SHAPE)
    return net, x, w


def _closed_form_curve(contrib, removed_counts):
    """S_0 - S_k = Σ of the k largest contributions w_i (x_i - baseline_i)."""
    order = np.argsort(-contrib, kind="stable")
    return np.array([contrib[order[:k]].sum() for k in removed_counts])


def test_curve_matches_the_closed_form(setup):
    net, x, w = setup
    truth = w * x                                   # true contribution of each voxel (baseline 0)
    res = region_perturbation(net, x, truth, target=1, steps=8, fraction=1.0, random_repeats=0, device="cpu",
                              dtype=D)
    counts = np.rint(np.arange(9) / 8 * 96).astype(int)
    s0 = net(x)[:, 1].detach().numpy()
    for n in range(2):
        drop = _closed_form_curve(truth[n].flatten().numpy(), counts)
        np.testing.assert_allclose(res.scores[n], s0[n] - drop, rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.aopc[n], drop.mean(), atol=1e-12)
    np.testing.assert_allclose(res.fractions, counts / 96)
    np.testing.assert_allclose(res.scores[:, -1], net.fc.bias[1].item(), atol=1e-12)   # everything removed


def test_oracle_beats_random_and_reverse(setup):
    net, x, w = setup
    truth = w * x
    best = region_perturbation(net, x, truth, target=1, steps=10, random_repeats=3, device="cpu", dtype=D)
    worst = region_perturbation(net, x, -truth, target=1, steps=10, random_repeats=0, device="cpu", dtype=D)
    assert (best.aopc > best.aopc_random).all() and (best.aopc_random > worst.aopc).all()
    assert (best.aopc_gap > 0).all()
    # a constant map has only ties: random tie-breaking makes it score like random order, not like raster order
    flat = region_perturbation(net, x, torch.ones_like(x), target=1, steps=10, random_repeats=0, device="cpu",
                               dtype=D, seed=5)
    assert (flat.aopc < best.aopc).all()


def test_patches_mean_baseline_and_batching(setup):
    net, x, w = setup
    truth = w * x
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    kwargs = dict(target=1, steps=6, fraction=1.0, patch=2, baseline="mean", random_repeats=0, device="cpu",
                  dtype=D)
    res = region_perturbation(net, x, truth, batch_size=1, **kwargs)
    again = region_perturbation(net, x, truth, batch_size=7, **kwargs)
    np.testing.assert_allclose(res.scores, again.scores, rtol=0, atol=1e-12)
    assert res.settings["regions"] == 2 * 2 * 3
    s0 = net(x)[:, 1].detach().numpy()
    counts = np.rint(np.arange(7) / 6 * 12).astype(int)
    for n in range(2):
        c = (w * (x[n] - mean[n]))[0].numpy()            # contribution against the mean baseline
        r = truth[n, 0].numpy()
        patch_r = r.reshape(2, 2, 2, 2, 3, 2).sum(axis=(1, 3, 5)).ravel()
        patch_c = c.reshape(2, 2, 2, 2, 3, 2).sum(axis=(1, 3, 5)).ravel()
        order = np.argsort(-patch_r, kind="stable")
        drop = np.array([patch_c[order[:k]].sum() for k in counts])
        np.testing.assert_allclose(res.scores[n], s0[n] - drop, atol=1e-12)


def test_aopc_formula():
    assert aopc(np.array([[3.0, 2.0, 0.0]])).tolist() == [pytest.approx((0 + 1 + 3) / 3)]


def test_bad_inputs(setup):
    net, x, w = setup
    with pytest.raises(InputError, match="does not fit the input"):
        region_perturbation(net, x, torch.ones(3, 3), device="cpu")
    with pytest.raises(InputError, match="baseline must be a number, 'mean' or 'blur'"):
        region_perturbation(net, x, x, baseline="noise", device="cpu")
    with pytest.raises(InputError, match="patch must be"):
        region_perturbation(net, x, x, patch=(2, 2), device="cpu")
    with pytest.raises(InputError, match="fraction"):
        region_perturbation(net, x, x, fraction=0, device="cpu")


def test_blur_baseline_closed_form(setup):
    from scipy.ndimage import gaussian_filter

    net, x, w = setup
    truth = w * x
    res = region_perturbation(net, x[:1], truth[:1], target=1, steps=4, fraction=1.0, baseline="blur",
                              blur_sigma=1.5, random_repeats=0, device="cpu", dtype=D)
    blurred = gaussian_filter(x[0, 0].numpy(), 1.5, mode="nearest")
    c = (w[0].numpy() * (x[0, 0].numpy() - blurred)).ravel()
    order = np.argsort(-truth[0, 0].numpy().ravel(), kind="stable")
    counts = np.rint(np.arange(5) / 4 * 96).astype(int)
    drop = np.array([c[order[:k]].sum() for k in counts])
    np.testing.assert_allclose(res.scores[0], net(x[:1])[0, 1].item() - drop, atol=1e-12)
