"""Against captum where it implements the same method for 3D inputs (float64, max relative difference ≤ 1e-5).

captum is a test-only dependency; the file is skipped without it.
"""
import pytest
import torch
import torch.nn as nn

captum_attr = pytest.importorskip("captum.attr")

from NeuroRelevanceLib import explain  # noqa: E402

torch.set_num_threads(1)
D = torch.float64


class Net(nn.Module):
    """nn.ReLU modules (captum's guided backprop hooks only those), a pooled feature block, a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 5, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool3d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(5 * 2 * 2 * 3, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    net = Net().double().eval()
    x = torch.randn(2, 2, 4, 4, 6, generator=torch.Generator().manual_seed(1), dtype=D)
    return net, x


def _close(ours, theirs):
    rel = (ours - theirs).abs().max() / theirs.abs().max()
    assert theirs.abs().max() > 0 and rel <= 1e-5, float(rel)


@pytest.mark.parametrize("ours, theirs, kwargs", [
    ("gradient", lambda n: captum_attr.Saliency(n), {"abs": False}),
    ("gradient_x_input", lambda n: captum_attr.InputXGradient(n), {}),
    ("guided_backprop", lambda n: captum_attr.GuidedBackprop(n), {}),
    ("integrated_gradients", lambda n: captum_attr.IntegratedGradients(n),
     {"n_steps": 64, "method": "riemann_middle"}),
])
def test_input_attributions_match_captum(case, ours, theirs, kwargs):
    net, x = case
    options = {"steps": 64, "rule": "midpoint"} if ours == "integrated_gradients" else {}
    mine = explain(net, x, ours, target=2, device="cpu", dtype=D, **options).relevance
    ref = theirs(net).attribute(x.clone().requires_grad_(True), target=2, **kwargs).detach()
    _close(mine, ref)


def test_layer_gradcam_matches_captum(case):
    net, x = case
    mine = explain(net, x, "gradcam", target=1, layer="features", device="cpu", dtype=D).relevance
    cam = captum_attr.LayerGradCam(net, net.features).attribute(x, target=1, relu_attributions=True).detach()
    ref = captum_attr.LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="trilinear")
    _close(mine[:, :1], ref)
