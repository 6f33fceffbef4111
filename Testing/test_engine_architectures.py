"""The relevance engine on the three seed architectures (NeuroRelevanceLib.nets).

Closed-form checks that can fail:
- conservation |ΣR − f| / |f| ≤ 1e-9 (float64) and ≤ 1e-4 (float32) on bias-free variants (convs
  without bias, BatchNorm with zero running mean and beta), for LRP-0, ε→0, z+, w², flat —
  computed here from the relevance and an autograd forward, not only read from the report;
- LRP-0 on bias-free ReLU nets equals gradient × input (autograd oracle);
- z+ / α1β0 maps carry the sign of the explained output;
- a batch gives each sample the map it gets alone.
"""
from __future__ import annotations

import pytest
import torch

from engine_nets_helpers import (
    bias_free,
    class_select,
    grad_times_input,
    mask_select,
    own_conservation,
    randomise_batchnorm,
)
from NeuroRelevanceLib import explain, nets
from NeuroRelevanceLib.engine.rules import LRP0, Epsilon, Flat, WSquare, ZPlus

F64 = torch.float64
STAB = 0.0  # no stabiliser: the engine guards z == 0 itself, so conservation is exact to round-off


def _cnn(**kw):
    return nets.build("DeepTaylorCNN", seed=0, channels=(4, 8), n_outputs=3, **kw)


def _resnet(**kw):
    return nets.build("PreActResNet3d", seed=0, widths=(4, 8, 8), units=(2, 2, 1), n_outputs=2,
                      task="classification", **kw)


def _unet(**kw):
    return nets.build("UNet3d", seed=0, in_channels=3, n_classes=2, features=(4, 8, 16), **kw)


def _input(shape, seed=1, positive=False, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype) if positive else torch.randn(shape, generator=g, dtype=dtype)
    return x


CASES = {
    # name: (model factory, input shape, target kwargs for explain, oracle selector)
    "cnn": (_cnn, (2, 1, 12, 12, 12), {"target": 1}, class_select(1)),
    "resnet": (_resnet, (2, 1, 12, 10, 12), {"target": 0}, class_select(0)),
}
UNET_MASK = torch.zeros(8, 8, 8, dtype=torch.bool)
UNET_MASK[2:6, 3:7, 1:5] = True
CASES["unet"] = (_unet, (2, 3, 8, 8, 8), {"target": 1, "mask": UNET_MASK}, mask_select(1, UNET_MASK))

ALL_LRP0 = {"*": LRP0(), "input": LRP0()}
RULESETS = {
    "lrp0": ALL_LRP0,
    "epsilon": {"*": Epsilon(STAB), "input": Epsilon(STAB)},
    "flat-input": {"*": LRP0(), "input": Flat(stabilizer=STAB)},
    "wsquare-input": {"*": Epsilon(STAB), "input": WSquare(stabilizer=STAB)},
    "zplus": {"*": ZPlus(stabilizer=STAB), "input": ZPlus(stabilizer=STAB)},
    "deep-taylor": {"*": ZPlus(stabilizer=STAB), "input": WSquare(stabilizer=STAB)},
}
# z+ conserves only where every relevance-carrying neuron has a positive z+ denominator: true for the
# sequential CNN (a ReLU before every conv), not for the pre-activation ResNet (residual branches end
# in a conv output without ReLU) nor for the U-Net (the ConvTranspose3d output is concatenated without
# a ReLU; a negative upsampled voxel whose inputs all meet negative weights has z+ = 0 yet receives
# x⁻w⁻ relevance from the next conv, which z+ cannot pass on).
APPLICABLE = [(a, r) for a in CASES for r in RULESETS if not (a != "cnn" and r in ("zplus", "deep-taylor"))]
# LRP-0 conservation is asserted in test_lrp0_equals_gradient_times_input; ε differs from it only by
# ε = 0 here, and w² / flat at the input are interchangeable for conservation: one each per net.
FLOAT64_CASES = [("cnn", "epsilon"), ("cnn", "flat-input"), ("cnn", "zplus"), ("cnn", "deep-taylor"),
                 ("resnet", "epsilon"), ("resnet", "wsquare-input"), ("unet", "epsilon"), ("unet", "flat-input")]
FLOAT32_CASES = [("cnn", "zplus"), ("resnet", "lrp0"), ("unet", "lrp0")]
assert set(FLOAT64_CASES + FLOAT32_CASES) <= set(APPLICABLE)


def _run(arch, rules, dtype=F64, positive=None, **kw):
    factory, shape, target_kw, select = CASES[arch]
    model = bias_free(factory(bias=False), shape=shape)
    positive = (rules is not None and any(isinstance(r, ZPlus) for r in rules.values())) if positive is None \
        else positive
    x = _input(shape, positive=positive, dtype=dtype)
    expl = explain(model, x, rules=rules, dtype=dtype, device="cpu", stabilizer=STAB, **target_kw, **kw)
    return model, x, expl, select


@pytest.mark.parametrize("arch, ruleset", FLOAT64_CASES)
def test_bias_free_conservation_float64(arch, ruleset):
    model, x, expl, select = _run(arch, RULESETS[ruleset])
    assert expl.relevance.shape == x.shape and expl.relevance.dtype == F64
    _, f = grad_times_input(model, x, select)
    torch.testing.assert_close(expl.target_value.reshape(-1).to(F64), f, rtol=1e-10, atol=1e-12)
    assert own_conservation(expl.relevance, f).max().item() <= 1e-9
    assert float(expl.conservation_error.max()) <= 1e-9


@pytest.mark.parametrize("arch, ruleset", FLOAT32_CASES)
def test_bias_free_conservation_float32(arch, ruleset):
    model, x, expl, select = _run(arch, RULESETS[ruleset], dtype=torch.float32)
    assert expl.relevance.dtype == torch.float32
    _, f = grad_times_input(model, x.to(F64), select)
    assert own_conservation(expl.relevance, f).max().item() <= 1e-4


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_batchnorm_pass_through_conserves_with_offset_batchnorms(arch):
    """Seed 000's R_i = R_j through BatchNorm: bias-free convs + BatchNorms with non-zero means and betas."""
    factory, shape, target_kw, select = CASES[arch]
    model = randomise_batchnorm(factory(bias=False), seed=11, shape=shape)
    x = _input(shape, seed=12)
    expl = explain(model, x, rules=ALL_LRP0, batchnorm="pass", dtype=F64, device="cpu", stabilizer=STAB,
                   **target_kw)
    _, f = grad_times_input(model, x, select)
    assert own_conservation(expl.relevance, f).max().item() <= 1e-9


@pytest.mark.parametrize("arch", sorted(CASES))
def test_lrp0_equals_gradient_times_input(arch):
    model, x, expl, select = _run(arch, ALL_LRP0)
    gxi, f = grad_times_input(model, x, select)
    scale = gxi.abs().max()
    assert scale > 0
    torch.testing.assert_close(expl.relevance, gxi, rtol=0, atol=1e-10 * float(scale))
    assert own_conservation(expl.relevance, f).max().item() <= 1e-9
    assert float(expl.conservation_error.max()) <= 1e-9


@pytest.mark.parametrize("arch", ["cnn", "unet"])
def test_alpha1_beta0_maps_have_the_sign_of_the_target(arch):
    factory, shape, target_kw, _ = CASES[arch]
    model = bias_free(factory(bias=False), seed=3, shape=shape)  # with biases a logit can be all bias
    x = _input(shape, seed=4)
    expl = explain(model, x, preset="alpha1-beta0", dtype=F64, device="cpu", **target_kw)
    sign = torch.sign(expl.target_value.reshape(-1, *[1] * (x.dim() - 1)).to(F64))
    signed = expl.relevance * sign
    assert signed.min().item() >= -1e-12 * signed.abs().max().item()
    assert signed.max().item() > 0


@pytest.mark.parametrize("arch, preset", [("cnn", "epsilon-plus"), ("resnet", "epsilon-plus"),
                                          ("unet", "alpha2-beta1")])
def test_batch_gives_each_sample_its_own_map(arch, preset):
    factory, shape, target_kw, _ = CASES[arch]
    model = randomise_batchnorm(factory(), seed=5, shape=shape)
    x = _input(shape, seed=6)
    together = explain(model, x, preset=preset, dtype=F64, device="cpu", **target_kw)
    for i in range(x.shape[0]):
        alone = explain(model, x[i:i + 1], preset=preset, dtype=F64, device="cpu", **target_kw)
        torch.testing.assert_close(together.relevance[i:i + 1], alone.relevance, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(together.target_value.reshape(-1)[i], alone.target_value.reshape(-1)[0])


@pytest.mark.parametrize("arch", sorted(CASES))
@pytest.mark.parametrize("preset", ["epsilon-plus", "epsilon-gamma-box", "deep-taylor", "alpha1-beta0",
                                    "alpha2-beta1"])
def test_every_preset_runs_on_trained_like_nets_and_leaves_the_model_alone(arch, preset):
    factory, shape, target_kw, _ = CASES[arch]
    model = randomise_batchnorm(factory(), seed=7, shape=shape)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = _input(shape, seed=8, dtype=torch.float32)
    x_before = x.clone()
    expl = explain(model, x, preset=preset, device="cpu", **target_kw)
    assert expl.relevance.shape == x.shape and torch.isfinite(expl.relevance).all()
    assert torch.equal(x, x_before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(p.grad is not None for p in model.parameters())


def test_unet_with_instance_norm_runs():
    model = _unet(norm="instance")
    x = _input((1, 3, 8, 8, 8), seed=9, dtype=torch.float32)
    expl = explain(model, x, preset="epsilon-plus", target=1, mask=UNET_MASK, device="cpu")
    assert expl.relevance.shape == x.shape and torch.isfinite(expl.relevance).all()


@pytest.mark.parametrize("name, shape", [("DeepTaylorCNN", (1, 1, 16, 16, 16)),
                                         ("PreActResNet3d", (1, 1, 16, 16, 16)),
                                         ("UNet3d", (1, 6, 8, 8, 8))])
def test_full_seed_shaped_nets_conserve_bias_free(name, shape):
    model = bias_free(nets.build(name, seed=0, bias=False), shape=shape)
    x = _input(shape, seed=10)
    kw = {"target": 1, "mask": torch.ones(shape[2:], dtype=torch.bool)} if name == "UNet3d" else {}
    expl = explain(model, x, rules=ALL_LRP0, dtype=F64, device="cpu", stabilizer=STAB, **kw)
    assert float(expl.conservation_error.max()) <= 1e-9
    assert own_conservation(expl.relevance, expl.target_value).max().item() <= 1e-9


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("arch", ["resnet", "unet"])
def test_torchscript_copy_gives_the_same_map(arch):
    """The engine reads a scripted net's graph; add / cat / ConvTranspose3d must come out the same."""
    factory, shape, target_kw, _ = CASES[arch]
    model = randomise_batchnorm(factory(), seed=13, shape=shape)
    x = _input(shape, seed=14)
    direct = explain(model, x, preset="epsilon-plus", dtype=F64, device="cpu", **target_kw)
    scripted = explain(torch.jit.script(model), x, preset="epsilon-plus", dtype=F64, device="cpu", **target_kw)
    assert direct.relevance.abs().max() > 0
    torch.testing.assert_close(scripted.relevance, direct.relevance, rtol=1e-9, atol=1e-12)
