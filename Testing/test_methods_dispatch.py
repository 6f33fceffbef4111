"""The ``explain`` dispatcher: LRP unchanged, every method on batches, 2D inputs, summary, errors, model untouched."""
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib import engine
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.explanation.dispatch import METHODS, explain
from NeuroRelevanceLib.methods import combine, normalise
from NeuroRelevanceLib.nets import DeepTaylorCNN

torch.set_num_threads(1)
D = torch.float64
FAST = {"smoothgrad": {"samples": 3}, "integrated_gradients": {"steps": 8}}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = DeepTaylorCNN(channels=(2, 3), n_outputs=3).double()
    with torch.no_grad():            # BatchNorm with non-trivial statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def x():
    return torch.randn(3, 1, 8, 8, 8, generator=torch.Generator().manual_seed(1), dtype=D)


def test_lrp_goes_to_the_engine_unchanged(net, x):
    a = explain(net, x, "lrp", preset="alpha1-beta0", target=2, device="cpu", dtype=D)
    b = engine.explain(net, x, preset="alpha1-beta0", target=2, device="cpu", dtype=D)
    assert torch.equal(a.relevance, b.relevance) and a.rules == b.rules and a.method == "lrp"


@pytest.mark.parametrize("method", [m for m in METHODS if m != "lrp"])
def test_batch_equals_single_runs_and_shapes(net, x, method):
    batch = explain(net, x, method, target=1, device="cpu", dtype=D, **FAST.get(method, {}))
    assert isinstance(batch, engine.Explanation) and batch.method == method
    assert batch.relevance.shape == x.shape and batch.relevance.device.type == "cpu"
    assert batch.target == "class 1"
    torch.testing.assert_close(batch.target_value, net.eval()(x)[:, 1].detach())
    for i in range(x.shape[0]):
        single = explain(net, x[i:i + 1], method, target=1, device="cpu", dtype=D, **FAST.get(method, {}))
        torch.testing.assert_close(batch.relevance[i:i + 1], single.relevance, rtol=1e-9, atol=1e-12)


def test_every_method_explains_the_same_target(net, x):
    values = {m: explain(net, x, m, device="cpu", dtype=D, **FAST.get(m, {})).target_value for m in METHODS}
    for v in values.values():
        torch.testing.assert_close(v, values["lrp"])


def test_model_is_left_untouched(net, x):
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for m in METHODS:
        explain(net, x, m, device="cpu", dtype=D, **FAST.get(m, {}))
    assert net.training and all(mod.training for mod in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(not mod._forward_hooks and not mod._backward_hooks for mod in net.modules())
    assert all(p.requires_grad for p in net.parameters())
    net.eval()


def test_two_dimensional_inputs():
    torch.manual_seed(2)
    net2d = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).double()
    x = torch.randn(2, 1, 6, 8, dtype=D)
    for m in METHODS:
        e = explain(net2d, x, m, device="cpu", dtype=D, **FAST.get(m, {}))
        assert e.relevance.shape == x.shape and torch.isfinite(e.relevance).all(), m


def test_summary_of_identical_maps_is_the_normalised_map(net, x):
    g = explain(net, x, "gradient", device="cpu", dtype=D).relevance
    for how in ("rank", "max-abs"):
        torch.testing.assert_close(combine([g, g, g], [1, 2, 3], how), normalise(g, how))
    s = explain(net, x, "summary", methods=["gradient", "saliency"], weights=[3, 1], normalisation="max-abs",
                device="cpu", dtype=D)
    torch.testing.assert_close(s.relevance, normalise(g, "max-abs"))
    assert s.parameters["methods"] == ["gradient", "gradient"] and s.parameters["weights"] == [0.75, 0.25]


def test_normalisations_closed_form():
    r = torch.tensor([[3.0, -1.0, 0.0, 3.0, 10.0]], dtype=D)
    torch.testing.assert_close(normalise(r, "rank"), torch.tensor([[0.625, 0.0, 0.25, 0.625, 1.0]], dtype=D))
    torch.testing.assert_close(normalise(r, "max-abs"), r / 10)
    torch.testing.assert_close(normalise(-r, "rank", absolute=True), normalise(r.abs(), "rank"))


def test_default_summary_is_the_seed_trio(net, x):
    s = explain(net, x[:1], "summary", device="cpu", dtype=D)
    assert s.parameters["methods"] == ["lrp:epsilon-plus", "guided_backprop", "gradcam++"]
    assert s.relevance.min() >= 0 and s.relevance.max() <= 1


def test_tjoa_filters_apply_to_other_methods(net, x):
    g = explain(net, x, "gradient", device="cpu", dtype=D).relevance
    f = explain(net, x, "gradient", filter="clamp", filter_range=(0.0, 0.2), device="cpu", dtype=D)
    peak = g.flatten(1).abs().amax(1).reshape(-1, 1, 1, 1, 1)
    torch.testing.assert_close(f.relevance, torch.sign(g) * torch.minimum(g.abs(), 0.2 * peak))
    assert f.parameters["filter"] == "clamp (0.0, 0.2)"
    with pytest.raises(InputError, match="filter_placement='input'"):
        explain(net, x, "gradient", filter="pass", filter_placement="every-layer", device="cpu")


def test_bad_requests_name_the_fix(net, x):
    with pytest.raises(InputError, match="Unknown method 'deeplift'; use one of lrp, gradient"):
        explain(net, x, "deeplift")
    with pytest.raises(InputError, match="no option 'steps'; its options are"):
        explain(net, x, "gradcam", steps=3)
    with pytest.raises(InputError, match="weights must be 2 finite non-negative"):
        explain(net, x, "summary", methods=["gradient", "gradcam"], weights=[1, -1], device="cpu")
    with pytest.raises(InputError, match="Unknown normalisation"):
        explain(net, x, "summary", methods=["gradient"], normalisation="zscore", device="cpu")
    with pytest.raises(InputError, match="class index"):
        explain(net, x, "gradient", target=7, device="cpu")
    with pytest.raises(InputError, match=r"x\[None, None\]"):
        explain(net, x[0, 0, 0, 0], "gradient", device="cpu")
    with pytest.raises(InputError, match="positive integer"):
        explain(net, x, "integrated_gradients", steps=0, device="cpu")


def test_torchscript_and_exported_programs():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 64, 3)).double().eval()
    x = torch.randn(2, 1, 4, 4, 4, dtype=D)
    exported = torch.export.export(net, (x,))
    scripted = torch.jit.script(net)
    for m in ("gradient", "gradient_x_input", "guided_backprop", "integrated_gradients", "smoothgrad"):
        ref = explain(net, x, m, device="cpu", dtype=D, **FAST.get(m, {})).relevance
        for other in (exported, scripted):
            torch.testing.assert_close(explain(other, x, m, device="cpu", dtype=D, **FAST.get(m, {})).relevance, ref)
    with pytest.raises(InputError, match="does not accept a batch of 1.*dynamic batch dimension"):
        explain(exported, x[:1], "gradient", device="cpu", dtype=D)


@pytest.mark.parametrize("method", ["gradient", "gradcam", "guided_backprop"])
def test_a_preset_with_a_method_without_presets_is_refused(net, x, method):
    """explain(..., method="gradcam", preset="deep-taylor") used to run Grad-CAM and drop the preset silently."""
    with pytest.raises(InputError, match=r"preset.*deep-taylor.*no effect.*lrp"):
        explain(net, x, method, preset="deep-taylor", target=1, device="cpu", dtype=D)
    explain(net, x, method, preset=None, target=1, device="cpu", dtype=D)   # None: no preset, accepted


def test_lrp_and_summary_default_to_epsilon_plus(net, x):
    a = explain(net, x, "lrp", target=1, device="cpu", dtype=D)
    b = engine.explain(net, x, preset="epsilon-plus", target=1, device="cpu", dtype=D)
    assert a.preset == "epsilon-plus" and torch.equal(a.relevance, b.relevance)
