"""Every option of the non-LRP methods is validated, and a non-finite map is an error (issue 13, item 6).

A bad number, name or type gives one ``ValueError`` (``InputError``) whose message names the option and says
what to pass instead — never a raw ``TypeError``/``RuntimeError``, never a map. Targets are checked by the
engine's ``target.selection``; the methods must give exactly the engine's answer for them.
"""
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib import engine
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.explanation.dispatch import METHODS, explain

torch.set_num_threads(1)
D = torch.float64
OTHERS = [m for m in METHODS if m not in ("lrp", "summary")]
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3)).double().eval()


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 1, 4, 5, 3, generator=torch.Generator().manual_seed(1), dtype=D)


BAD = [
    # (method, options, the option the message must name)
    *[("smoothgrad", {"samples": v}, "samples") for v in (0, -2, 2.5, True, "10", None)],
    *[("smoothgrad", {"sigma": v}, "sigma") for v in (-0.1, NAN, INF, "0.1", None, True)],
    *[("smoothgrad", {"seed": v}, "seed") for v in (1.5, -1, True, "1", 2 ** 70)],
    *[("smoothgrad", {"batch_size": v}, "batch_size") for v in (0, 2.5, None)],
    *[("integrated_gradients", {"steps": v}, "steps") for v in (0, -1, 2.5, True, "64", None)],
    *[("integrated_gradients", {"rule": v}, "rule") for v in ("simpson", 1, None)],
    ("integrated_gradients", {"rule": "trapezoid", "steps": 1}, "steps"),
    *[("integrated_gradients", {"baseline": v}, "baseline")
      for v in (NAN, INF, "zeros", True, [1.0, 2.0], torch.zeros(2, 2), torch.zeros(3, 1, 4, 5, 3),
                torch.full((1, 4, 5, 3), NAN, dtype=D), torch.zeros(1, 4, 5, 3, dtype=torch.complex64))],
    *[("integrated_gradients", {"batch_size": v}, "batch_size") for v in (0, -3, "4")],
    *[(m, {"layer": v}, "layer") for m in ("gradcam", "gradcam++", "guided_gradcam") for v in ("nope", 3, "", "0.")],
    *[(m, {"relu": v}, "relu") for m in ("gradcam", "gradcam++") for v in ("yes", None, 1)],
    *[("guided_gradcam", {"plus": v}, "plus") for v in ("no", None, 0)],
    *[(m, {"filter_per_channel": v}, "filter_per_channel") for m in ("gradient", "gradcam") for v in ("yes", None)],
    ("gradient", {"steps": 3}, "steps"),
    ("gradient", {"device": "tpu"}, "device"),
    ("gradient", {"dtype": torch.int32}, "dtype"),
    ("gradient", {"dtype": "float64"}, "dtype"),
    *[("summary", {"methods": v}, "methods") for v in ([], "gradient", None, 3)],
    *[("summary", {"methods": v}, "method") for v in (["gradient", 3], ["gradient", "nope"], ["summary"])],
    *[("summary", {"methods": ["gradient", "gradcam"], "weights": v}, "weights")
      for v in ([1], [NAN, 1], [-1, 2], [0, 0], "equal", [INF, 1])],
    *[("summary", {"methods": ["gradient"], "normalisation": v}, "normalisation") for v in ("zscore", None, 1)],
    *[("summary", {"methods": ["gradient"], "absolute": v}, "absolute") for v in ("yes", None)],
    *[("summary", {"methods": ["gradient"], "method_options": v}, "method_options")
      for v in ([1], "gradcam", {"gradient": 3})],
    ("summary", {"methods": ["gradient"], "method_options": {"nope": {}}}, "method"),
    ("summary", {"methods": ["gradcam"], "method_options": {"gradcam": {"layer": "nope"}}}, "layer"),
    ("summary", {"methods": ["smoothgrad"], "method_options": {"smoothgrad": {"samples": 0}}}, "samples"),
]


@pytest.mark.parametrize("method, options, name", BAD, ids=[f"{m}-{o}" for m, o, _ in BAD])
def test_bad_option_is_one_clear_value_error(net, x, method, options, name):
    before = x.clone()
    with pytest.raises(ValueError) as info:
        explain(net, x, method, **{"device": "cpu", "dtype": D, **options})
    assert isinstance(info.value, InputError), f"{type(info.value).__name__}: {info.value}"
    assert name in str(info.value), str(info.value)
    assert torch.equal(x, before)


@pytest.mark.parametrize("method", [None, 3, "nope", "", "lrp2"])
def test_bad_method_name(net, x, method):
    with pytest.raises(InputError, match="method"):
        explain(net, x, method, device="cpu")


def test_good_spellings_still_run(net, x):
    """The validation does not refuse reasonable values (numpy/torch integers, 0 noise, a baseline per sample)."""
    import numpy as np

    explain(net, x, "smoothgrad", samples=np.int64(2), sigma=0, seed=np.int32(3), device="cpu", dtype=D)
    explain(net, x, "integrated_gradients", steps=torch.tensor(4).item(), baseline=torch.zeros(1, 4, 5, 3),
            device="cpu", dtype=D)
    explain(net, x, "integrated_gradients", steps=3, baseline=np.zeros((2, 1, 4, 5, 3)), device="cpu", dtype=D)
    explain(net, x, "gradcam", relu=False, layer="2", filter_per_channel=True, filter="pass", device="cpu")


class _Sqrt(nn.Module):
    """conv (no bias) → √|·|: finite everywhere, but the gradient is NaN wherever the conv output is exactly 0
    (as it is behind the block of zeros in the test input)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3, padding=1, bias=False)
        self.head = nn.Linear(2, 2)

    def forward(self, x):
        return self.head(self.conv(x).abs().sqrt().mean((2, 3, 4)))


class _Overflow(nn.Module):
    """A finite input whose output overflows to inf: no target value, so no map."""

    def forward(self, x):
        return torch.stack([x.flatten(1).sum(1) * 1e308 * 10, -x.flatten(1).sum(1)], 1)


@pytest.mark.parametrize("method", OTHERS + ["summary"])
def test_non_finite_map_is_an_error(method):
    torch.manual_seed(0)
    x = torch.randn(1, 1, 6, 6, 6, generator=torch.Generator().manual_seed(2), dtype=D)
    x[:, :, :4, :4, :4] = 0
    options = {"summary": {"methods": ["gradient", "gradcam"]}, "smoothgrad": {"samples": 2, "sigma": 0.0},
               "integrated_gradients": {"steps": 4}}.get(method, {})
    if "cam" in method:
        options["layer"] = "conv"
    with pytest.raises(InputError, match="non-finite"):
        explain(_Sqrt().double(), x, method, target=1, device="cpu", dtype=D, **options)


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "smoothgrad"])
def test_non_finite_output_is_an_error(method):
    x = torch.ones(1, 1, 2, 2, 2, dtype=D)
    with pytest.raises(InputError, match="non-finite"):
        explain(_Overflow(), x, method, target=0, device="cpu", dtype=D, **({"steps": 2} if method[0] == "i" else {}))


@pytest.mark.parametrize("target", [1.7, -1, 3, "AD", NAN, torch.tensor([0, 1, 2]), torch.tensor([[0.5, NAN, 0]]),
                                    True])
@pytest.mark.parametrize("method", OTHERS)
def test_targets_are_checked_by_the_engine(net, x, method, target):
    """Whatever the engine decides for a target (error or description), the methods decide the same."""
    options = {"smoothgrad": {"samples": 1}, "integrated_gradients": {"steps": 2}}.get(method, {})
    try:
        ref = engine.explain(net, x, preset="epsilon-plus", target=target, device="cpu", dtype=D)
    except Exception as exc:  # noqa: BLE001 - whatever the engine raises, the methods raise the same
        with pytest.raises(ValueError if isinstance(exc, ValueError) else type(exc)) as info:
            explain(net, x, method, target=target, device="cpu", dtype=D, **options)
        assert str(info.value) == str(exc)
    else:
        assert explain(net, x, method, target=target, device="cpu", dtype=D, **options).target == ref.target


# ---- a model the input does not fit: one InputError from every method, as from LRP (trial 1, finding 7) ----
class TwoInputs(nn.Module):
    """forward(x, y): explain() passes one tensor."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv3d(1, 2, 3, padding=1), nn.Linear(2, 2)

    def forward(self, x, y):
        return self.fc(torch.relu(self.conv(x + y)).mean((2, 3, 4)))


class TwoChannels(nn.Module):
    """Expects two input channels; a one-channel x makes the convolution raise a RuntimeError."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv3d(2, 2, 3, padding=1), nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))


class Raising(nn.Module):
    """A forward that fails with a plain Python error (an IndexError of the user's code)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        return self.fc(x.mean((2, 3, 4)))[[0, 5]]


@pytest.mark.parametrize("model, fragment", [(TwoInputs, "'y'"), (TwoChannels, "channels"), (Raising, "index")])
@pytest.mark.parametrize("method", METHODS)
def test_a_model_that_fails_on_the_input_is_one_input_error(method, model, fragment):
    torch.manual_seed(0)
    x = torch.rand(1, 1, 5, 5, 5)
    options = {"layer": "conv"} if "cam" in method and model is not Raising else {}
    if "cam" in method and model is Raising:
        options = {"layer": "fc"}
    with pytest.raises(InputError) as info:
        explain(model().eval(), x, method=method, **options)
    message = str(info.value)
    assert "The model failed on an input of shape (1, 1, 5, 5, 5)" in message, message
    assert fragment in message.lower() or fragment in message, message
    if model is TwoInputs and method not in ("lrp", "summary"):  # LRP: the engine's own message
        assert "one tensor" in message, message
