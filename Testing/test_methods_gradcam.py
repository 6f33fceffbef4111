"""Grad-CAM, Grad-CAM++ and Guided Grad-CAM against hand-computed maps, and their geometry."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.explanation.layers import last_conv_block
from NeuroRelevanceLib.methods import (
    gradcam,
    gradcam_plus_plus,
    gradcampp_weights,
    guided_backprop,
    guided_gradcam,
    upsample,
)
from NeuroRelevanceLib.nets import DeepTaylorCNN

torch.set_num_threads(1)
D = torch.float64


class CamNet(nn.Module):
    """features (conv + ReLU, optional 2× average pool) -> global average pool -> linear head."""

    def __init__(self, c_in=2, k=3, pool=False):
        super().__init__()
        layers = [nn.Conv3d(c_in, k, 3, padding=1), nn.ReLU()]
        if pool:
            layers.append(nn.AvgPool3d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(k, 2)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3, 4)))


def test_gradcam_equals_the_cam_formula_for_global_pool_and_linear_head():
    """With GAP + linear head, ∂S/∂A_k = W_ck / V, so Grad-CAM = ReLU(Σ_k W_ck A_k) / V (Zhou et al.'s CAM / V)."""
    torch.manual_seed(0)
    net = CamNet().double()
    x = torch.randn(2, 2, 4, 5, 6, generator=torch.Generator().manual_seed(1), dtype=D)
    e = gradcam(net, x, target=1, layer="features", device="cpu", dtype=D)
    a = net.features(x).detach()
    cam = torch.einsum("k,nkdhw->ndhw", net.head.weight.detach()[1], a).clamp(min=0) / a[0, 0].numel()
    assert e.relevance.shape == x.shape
    for c in range(2):
        torch.testing.assert_close(e.relevance[:, c], cam, rtol=1e-12, atol=1e-15)
    assert e.parameters["layer"] == "features"


def test_gradcam_lights_the_region_the_target_depends_on():
    """Identity 1×1 conv: channel 0 holds a blob in region R, channel 1 a blob in Q; class c reads channel c."""
    net = CamNet(c_in=2, k=2).double()
    with torch.no_grad():
        conv = net.features[0] = nn.Conv3d(2, 2, 1).double()
        conv.weight.zero_()
        conv.weight[0, 0] = 1
        conv.weight[1, 1] = 1
        conv.bias.zero_()
        net.head.weight.copy_(torch.eye(2))
        net.head.bias.zero_()
    x = torch.zeros(1, 2, 6, 6, 6, dtype=D)
    x[0, 0, 1:3, 1:3, 1:3] = 1.0      # R
    x[0, 1, 3:6, 4:6, 2:5] = 2.0      # Q
    for cls, region in enumerate([x[0, 0] > 0, x[0, 1] > 0]):   # class c looks at channel c
        for method in (gradcam, gradcam_plus_plus):
            m = method(net, x, target=cls, layer="features", device="cpu", dtype=D).relevance[0, 0]
            assert (m[region] > 0).all() and (m[~region] == 0).all(), (cls, method.__name__)


def test_gradcampp_weights_hand_computed():
    """α = g² / (2g² + ΣA·g³), w = Σ α·ReLU(g).

    A = [1, 2, 3, 4], g = [1, −1, 0.5, 2]: α = [1/12, −1/8, 1/7, 1/22], so w = 1/12 + 1/14 + 1/11.
    """
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D).reshape(1, 1, 2, 2, 1)
    g = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=D).reshape(1, 1, 2, 2, 1)
    assert gradcampp_weights(a, g).item() == pytest.approx(1 / 12 + 1 / 14 + 1 / 11, rel=1e-14)


def test_gradcampp_weights_sum_over_all_three_axes():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 2, (2, 3, 2, 3, 4))
    g = rng.normal(0, 1, (2, 3, 2, 3, 4))
    expected = np.zeros((2, 3))
    for n in range(2):
        for k in range(3):
            total = sum(a[n, k, i, j, m] for i in range(2) for j in range(3) for m in range(4))
            for i in range(2):
                for j in range(3):
                    for m in range(4):
                        gv = g[n, k, i, j, m]
                        den = 2 * gv ** 2 + total * gv ** 3
                        alpha = gv ** 2 / den if den != 0 else 0.0
                        expected[n, k] += alpha * max(gv, 0.0)
    got = gradcampp_weights(torch.from_numpy(a), torch.from_numpy(g)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the 2D form applied per depth slice (ΣA over height and width only) gives other weights
    slice_sum = a.sum(axis=(3, 4), keepdims=True)
    den = 2 * g ** 2 + slice_sum * g ** 3
    two_axis = (np.where(den != 0, g ** 2 / np.where(den != 0, den, 1), 0) * np.maximum(g, 0)).sum(axis=(2, 3, 4))
    assert np.abs(two_axis - got).max() > 1e-3


def test_upsampling_geometry_align_corners_false():
    """Layer voxel j of a 2× pooled grid sits at input coordinate 2j + 0.5: a ramp [0, 1] becomes [0, .25, .75, 1]."""
    ramp = torch.tensor([0.0, 1.0], dtype=D).reshape(1, 1, 2, 1, 1)
    up = upsample(ramp, (4, 1, 1)).flatten()
    torch.testing.assert_close(up, torch.tensor([0.0, 0.25, 0.75, 1.0], dtype=D))
    # through a real network: a blob exactly covering one pooled block gives a map symmetric about the block
    torch.manual_seed(3)
    net = CamNet(c_in=1, k=2, pool=True).double()
    with torch.no_grad():
        net.features[0].weight.zero_()
        net.features[0].weight[:, 0, 1, 1, 1] = 1.0
        net.features[0].bias.zero_()
        net.head.weight.fill_(1.0)
    x = torch.zeros(1, 1, 8, 8, 8, dtype=D)
    x[0, 0, 4:6, 2:4, 4:6] = 1.0
    m = gradcam(net, x, target=0, device="cpu", dtype=D).relevance[0, 0]
    assert m.shape == x.shape[2:]
    peak = (m == m.max()).nonzero()
    assert sorted(set(peak[:, 0].tolist())) == [4, 5] and sorted(set(peak[:, 1].tolist())) == [2, 3]
    assert sorted(set(peak[:, 2].tolist())) == [4, 5]
    torch.testing.assert_close(m[4], m[5])
    torch.testing.assert_close(m[3], m[6])


def test_guided_gradcam_is_guided_backprop_times_cam():
    torch.manual_seed(4)
    net = DeepTaylorCNN(channels=(2, 3), n_outputs=2, batchnorm=False).double()
    x = torch.randn(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(5), dtype=D)
    gg = guided_gradcam(net, x, device="cpu", dtype=D)
    gb = guided_backprop(net, x, device="cpu", dtype=D).relevance
    cam = gradcam(net, x, device="cpu", dtype=D).relevance
    torch.testing.assert_close(gg.relevance, gb * cam, rtol=1e-12, atol=1e-15)


def test_default_layer_is_the_last_conv_block():
    net = DeepTaylorCNN(channels=(2, 3), n_outputs=2)
    assert last_conv_block(net, torch.zeros(1, 1, 8, 8, 8)) == "features.block2"
    bare = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8, 2))
    assert last_conv_block(bare, torch.zeros(1, 1, 4, 4, 4)) == "0"


def test_layer_errors_name_the_fix():
    net = DeepTaylorCNN(channels=(2, 3), n_outputs=2)
    x = torch.randn(1, 1, 8, 8, 8)
    with pytest.raises(InputError, match="no layer named 'features.blok2'.*did you mean 'features.block2'"):
        gradcam(net, x, layer="features.blok2", device="cpu")
    with pytest.raises(InputError, match="no spatial axes.*choose a convolutional layer"):
        gradcam_plus_plus(net, x, layer="head.fc", device="cpu")
    with pytest.raises(InputError, match="TorchScript.*card"):
        gradcam(torch.jit.script(nn.Sequential(nn.Conv3d(1, 2, 3), nn.Flatten())), x, device="cpu")
    with pytest.raises(InputError, match="no convolution layer.*layer="):
        gradcam(nn.Sequential(nn.Flatten(), nn.Linear(512, 2)), x, device="cpu")


@pytest.mark.parametrize("norm", [lambda k: nn.InstanceNorm3d(k, affine=True), lambda k: nn.GroupNorm(k, k)])
def test_gradcam_refuses_a_layer_right_before_a_per_channel_normalisation(norm):
    """InstanceNorm (or GroupNorm with one channel per group) removes each channel's mean, so Σ_v ∂S/∂A_kv = 0 for
    every k: Grad-CAM's weights are 0 and its map would be rounding noise. Refused; Grad-CAM++ still works."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), norm(3), nn.ReLU(), nn.Conv3d(3, 2, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 2)).double()
    x = torch.randn(1, 1, 5, 5, 5, generator=torch.Generator().manual_seed(2), dtype=D)
    for f in (gradcam, guided_gradcam):
        with pytest.raises(InputError, match="weights vanish at layer '0'"):
            f(net, x, target=1, layer="0", device="cpu", dtype=D)
    assert gradcam_plus_plus(net, x, target=1, layer="0", device="cpu", dtype=D).relevance.max() > 0
    assert gradcam(net, x, target=1, layer="2", device="cpu", dtype=D).relevance.max() > 0   # after the norm: fine
