"""Every non-LRP method on small 3D MONAI networks nobody here wrote, against captum (issue 13, item 9).

DenseNet121 (BatchNorm after concatenation, in-place ReLU), ResNet (residual adds), SegResNet (GroupNorm, in-place
ReLU, residual adds), UNet (PReLU + InstanceNorm, residual units) and BasicUNet (LeakyReLU, InstanceNorm,
concatenation, transposed convs) — with tiny channels and grids, float64. The oracle is captum 0.9: Saliency,
InputXGradient, IntegratedGradients (riemann_middle = our midpoint rule), GuidedBackprop, LayerGradCam and
GuidedGradCam (trilinear upsampling), and for Grad-CAM++ captum's layer activation and layer gradient fed into the
paper's weight formula written out here. Segmentation networks explain channel 1 over the predicted foreground;
captum gets that same scalar as a wrapped model. Each also runs as TorchScript and as an exported program where
those formats carry the method (see docs/methods.md for what is refused).
"""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

captum_attr = pytest.importorskip("captum.attr")
monai_nets = pytest.importorskip("monai.networks.nets")

from NeuroRelevanceLib.errors import InputError  # noqa: E402
from NeuroRelevanceLib import explain  # noqa: E402

torch.set_num_threads(1)
D = torch.float64
TOL = 1e-6        # max |ours − captum| / max |captum|
STEPS = 8


def _networks() -> dict:
    n = monai_nets
    return {
        "DenseNet121": (lambda: n.DenseNet121(spatial_dims=3, in_channels=1, out_channels=3, init_features=4,
                                              growth_rate=2, block_config=(1, 2), bn_size=2), (2, 1, 16, 16, 16)),
        "ResNet": (lambda: n.ResNet(block="basic", layers=(1, 1, 1, 1), block_inplanes=(2, 4, 4, 4), spatial_dims=3,
                                    n_input_channels=1, num_classes=3, conv1_t_size=3, conv1_t_stride=1,
                                    no_max_pool=True),
                   (2, 1, 16, 16, 16)),
        "SegResNet": (lambda: n.SegResNet(spatial_dims=3, init_filters=2, in_channels=1, out_channels=2,
                                          blocks_down=(1, 1), blocks_up=(1,), norm=("GROUP", {"num_groups": 2})),
                      (2, 1, 8, 8, 8)),
        "UNet": (lambda: n.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(2, 4), strides=(2,),
                                num_res_units=1, norm="instance"), (2, 1, 8, 8, 8)),
        "BasicUNet": (lambda: n.BasicUNet(spatial_dims=3, in_channels=1, out_channels=2, features=(2, 2, 2, 2, 2, 2)),
                      (1, 1, 32, 16, 16)),
    }


NAMES = list(_networks())
#: Grad-CAM layer per network (None: the default). SegResNet's default block output feeds a GroupNorm with one
#: channel per group, where Grad-CAM's weights vanish: that default is refused (test below), so name another layer.
LAYERS = {"SegResNet": "convInit"}


def _with_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode and normalisation matter."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model


def _case(name: str):
    """(name, model, x, the explained scalar as a one-output model for captum, target)."""
    build, shape = _networks()[name]
    torch.manual_seed(0)
    model = _with_statistics(build().double().eval())
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=D)
    with torch.no_grad():
        out = model(x)
    if out.dim() == 2:                      # classifier: explain class 1 (not necessarily the predicted one)
        return name, model, x, model, 1
    weights = torch.zeros_like(out)         # segmentation: channel 1 over the predicted foreground
    weights[:, 1] = (out.argmax(1) == 1).to(out)
    assert 0 < weights.sum() < weights[:, 1].numel(), "the test needs a partial foreground"
    return name, model, x, _Scalar(model, weights), None


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    return _case(request.param)


class _Scalar(nn.Module):
    """What the methods explain for a segmentation output, as a one-output model for captum."""

    def __init__(self, model: nn.Module, weights: torch.Tensor):
        super().__init__()
        self.model, self.weights = model, weights

    def forward(self, x):     # captum stacks path points step by step: sample i of x is sample i % N of the input
        w = self.weights.repeat(x.shape[0] // len(self.weights), *([1] * (self.weights.dim() - 1)))
        return (self.model(x) * w).flatten(1).sum(1, keepdim=True)


def _captum_target(target):
    return 0 if target is None else target


def _module(model: nn.Module, name: str) -> nn.Module:
    return dict(model.named_modules())[name]


def _gap(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert theirs.abs().max() > 0, "the oracle map is zero: the test explains nothing"
    return float((ours - theirs).abs().max() / theirs.abs().max())


def _ours(model, x, target, method, **options):
    return explain(model, x, method, target=target, device="cpu", dtype=D, **options)


@pytest.mark.parametrize("method, oracle, kwargs", [
    ("gradient", "Saliency", {"abs": False}),
    ("gradient_x_input", "InputXGradient", {}),
    ("integrated_gradients", "IntegratedGradients", {"n_steps": STEPS, "method": "riemann_middle"}),
    ("guided_backprop", "GuidedBackprop", {}),
])
def test_input_attributions_match_captum(case, method, oracle, kwargs):
    name, model, x, scalar, target = case
    options = {"steps": STEPS, "rule": "midpoint", "batch_size": 16} if method == "integrated_gradients" else {}
    before = x.clone()
    mine = _ours(model, x, target, method, **options)
    assert torch.equal(x, before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # captum's notes on in-place ReLUs and hooks
        ref = getattr(captum_attr, oracle)(scalar).attribute(x.clone().requires_grad_(True),
                                                             target=_captum_target(target), **kwargs).detach()
    assert _gap(mine.relevance, ref) <= TOL, (name, method, _gap(mine.relevance, ref))


def test_smoothgrad_without_noise_is_the_gradient(case):
    name, model, x, scalar, target = case
    mine = _ours(model, x, target, "smoothgrad", samples=2, sigma=0.0)
    ref = captum_attr.Saliency(scalar).attribute(x.clone().requires_grad_(True), target=_captum_target(target),
                                                 abs=False).detach()
    assert _gap(mine.relevance, ref) <= TOL
    noisy = _ours(model, x, target, "smoothgrad", samples=2, sigma=0.1)
    assert torch.isfinite(noisy.relevance).all() and not torch.equal(noisy.relevance, mine.relevance)


def _layer_tensors(scalar, layer, x, target):
    """A and ∂S/∂A from captum (LayerActivation, LayerGradientXActivation without the multiplication)."""
    a = captum_attr.LayerActivation(scalar, layer).attribute(x)
    g = captum_attr.LayerGradientXActivation(scalar, layer, multiply_by_inputs=False).attribute(
        x, target=_captum_target(target))
    return a.detach(), g.detach()


def test_gradcam_and_gradcampp_match_captum(case):
    name, model, x, scalar, target = case
    cam = _ours(model, x, target, "gradcam", layer=LAYERS.get(name))
    layer_name = cam.parameters["layer"]
    layer = _module(scalar if scalar is model else scalar.model, layer_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = captum_attr.LayerGradCam(scalar, layer).attribute(x, target=_captum_target(target),
                                                                 relu_attributions=True).detach()
        ref = captum_attr.LayerAttribution.interpolate(ref, tuple(x.shape[2:]), interpolate_mode="trilinear")
        assert _gap(cam.relevance[:, :1], ref) <= TOL, (name, layer_name)
        # Grad-CAM++ (Chattopadhay et al. 2018, eq. 19 with the exponential dropped), sums over all spatial axes
        a, g = _layer_tensors(scalar, layer, x, target)
    dims = tuple(range(2, a.dim()))
    denom = 2 * g ** 2 + a.sum(dims, keepdim=True) * g ** 3
    alpha = torch.where(denom != 0, g ** 2 / torch.where(denom != 0, denom, 1.0), 0.0)
    w = (alpha * g.clamp(min=0)).sum(dims, keepdim=True)
    ref_pp = F.interpolate((w * a).sum(1, keepdim=True).clamp(min=0), size=tuple(x.shape[2:]), mode="trilinear",
                           align_corners=False)
    pp = _ours(model, x, target, "gradcam++", layer=layer_name)
    assert _gap(pp.relevance[:, :1], ref_pp) <= TOL, (name, layer_name)


def test_guided_gradcam_matches_captum(case):
    name, model, x, scalar, target = case
    mine = _ours(model, x, target, "guided_gradcam", layer=LAYERS.get(name))
    layer = _module(scalar if scalar is model else scalar.model, mine.parameters["layer"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = captum_attr.GuidedGradCam(scalar, layer).attribute(x, target=_captum_target(target),
                                                                 interpolate_mode="trilinear").detach()
    assert _gap(mine.relevance, ref) <= TOL


def test_scripted_and_exported_give_the_module_maps(case):
    """The gradient family reads the same map from TorchScript and from an exported program; Grad-CAM needs
    module hooks and refuses both with the fix."""
    name, model, x, scalar, target = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        formats = {"torchscript": torch.jit.script(model), "export": torch.export.export(model, (x,))}
    for method in ("gradient", "guided_backprop"):
        ref = _ours(model, x, target, method).relevance
        for fmt, other in formats.items():
            got = _ours(other, x, target, method).relevance
            assert _gap(got, ref) <= 1e-9, (name, fmt, method)
    for fmt, other in formats.items():
        with pytest.raises(InputError, match="layer"):
            _ours(other, x, target, "gradcam")


def test_gradcam_refuses_a_layer_where_its_weights_vanish():
    """Right before a per-channel normalisation the spatial mean of ∂S/∂A is 0 in every channel (captum returns a
    map of rounding noise there); we refuse and point to Grad-CAM++, whose weights do not vanish."""
    name, model, x, scalar, target = _case("SegResNet")
    layer = "up_layers.0.0.conv2"
    with pytest.raises(InputError, match="weights vanish at layer 'up_layers.0.0.conv2'.*gradcam\\+\\+"):
        _ours(model, x, target, "gradcam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = captum_attr.LayerGradCam(scalar, _module(model, layer)).attribute(x, target=0, relu_attributions=True)
    assert 0 < float(ref.abs().max()) < 1e-12       # what one would otherwise get: noise
    assert float(_ours(model, x, target, "gradcam++", layer=layer).relevance.max()) > 1e-3
