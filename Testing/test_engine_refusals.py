"""Results that would mislead are refused or flagged, options that would be ignored are refused, and
outputs shaped (N,) are explained.

- an all-zero map, or a conservation error above 100 %, comes with one ``ConservationWarning``; a conserving
  map with none; an ε that overflows the run's dtype (every map would be zero) is refused;
- ``mask=`` on a classifier and ``pass_through`` names that match no operator are refused;
- a regressor ``fc(h).squeeze(1)`` (output (N,)) is explained exactly (LRP-0 = gradient × input);
- a softmax that is not the last operation is refused with one message naming the fix.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from engine_nets_helpers import grad_times_input
from NeuroRelevanceLib.engine import ConservationWarning, explain

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]
D = torch.float64


class Net(nn.Module):
    def __init__(self, bias: bool = False, out: int = 3, squeeze: bool = False):
        super().__init__()
        self.squeeze = squeeze
        self.c = nn.Conv3d(1, 4, 3, padding=1, bias=bias)
        self.fc = nn.Linear(4, out, bias=bias)

    def forward(self, x):
        y = self.fc(torch.relu(self.c(x)).mean((2, 3, 4)))
        return y.squeeze(1) if self.squeeze else y


def _x(n=1, seed=0, dtype=D):
    torch.manual_seed(seed)
    return torch.randn(n, 1, 6, 6, 6, dtype=dtype)


def _lrp0(model, x, **kw):
    return explain(model, x, preset=None, rules={"*": "lrp0"}, stabilizer=0.0, **kw)


def test_all_zero_map_warns_and_an_overflowing_epsilon_is_refused():
    torch.manual_seed(1)
    model = Net().eval()
    with pytest.warns(ConservationWarning, match="zero everywhere"):
        _lrp0(Net(bias=True).eval(), _x(dtype=torch.float32) * 1e-45, target=0)  # underflow in float32
    with pytest.warns(ConservationWarning, match="zero everywhere"):
        _lrp0(model, _x(dtype=torch.float32) * 1e-45, target=0)  # the value itself is 0
    with pytest.raises(ValueError, match="epsilon=1e.300 overflows float32"):
        explain(model, _x(dtype=torch.float32), preset="epsilon", epsilon=1e300, target=0)


def test_large_conservation_error_warns_once_and_conserving_map_does_not():
    torch.manual_seed(2)
    model = Net(bias=True).to(D).eval()
    with torch.no_grad():
        model.fc.bias.fill_(50.0)  # the target is mostly bias: relevance of the input is a small share
    with pytest.warns(ConservationWarning, match="conservation") as record:
        e = _lrp0(model, _x(), target=0, dtype=D)
    assert len([w for w in record if issubclass(w.category, ConservationWarning)]) == 1
    assert e.max_conservation_error > 1.0
    free = Net().to(D).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservationWarning)
        assert _lrp0(free, _x(), target=0, dtype=D).max_conservation_error < 1e-9


def test_mask_on_a_classifier_is_refused():
    model = Net().to(D).eval()
    with pytest.raises(ValueError, match="mask"):
        explain(model, _x(), dtype=D, mask=torch.ones(6, 6, 6, dtype=torch.bool))


@pytest.mark.parametrize("names", [{"mull"}, "nothing_here", {"relu", "typo"}])
def test_pass_through_names_that_match_nothing_are_refused(names):
    model = Net().to(D).eval()
    with pytest.raises(ValueError, match="pass_through"):
        explain(model, _x(), dtype=D, pass_through=names)


def test_pass_through_name_that_matches_is_accepted():
    class Gate(Net):
        def forward(self, x):
            h = self.c(x)
            return self.fc((torch.relu(h) * torch.sigmoid(h)).mean((2, 3, 4)))

    e = explain(Gate().to(D).eval(), _x(), dtype=D, pass_through={"mul"})
    assert torch.isfinite(e.relevance).all()


@pytest.mark.parametrize("fmt", ["module", "exported", "traced"])
def test_output_shaped_n_is_a_regression_output(fmt):
    torch.manual_seed(3)
    model = Net(bias=True, out=1, squeeze=True).to(D).eval()
    x = _x(n=2)
    m = {"module": model, "exported": lambda: torch.export.export(model, (x,)),
         "traced": lambda: torch.jit.trace(model, x)}[fmt]
    m = m() if callable(m) and not isinstance(m, nn.Module) else m
    gxi, f = grad_times_input(model, x, lambda out: out)
    e = _lrp0(m, x, dtype=D)
    assert torch.allclose(e.target_value, f)
    assert float((e.relevance - gxi).abs().max() / gxi.abs().max()) < 1e-9
    assert e.layer_totals and all(v.shape == (2,) for v in e.layer_totals.values())


@pytest.mark.parametrize("after", ["scale", "add"])
def test_softmax_not_last_is_refused_with_the_fix(after):
    """A softmax followed by anything but shape-only ops is refused (shape-only ops: stripped, test_engine_trial4)."""
    class Prob(Net):
        def forward(self, x):
            p = torch.softmax(super().forward(x), dim=1)
            return {"scale": lambda: p * 100, "add": lambda: p + 0.5}[after]()

    with pytest.raises(ValueError) as refused:
        explain(Prob().to(D).eval(), _x(), dtype=D, target=0)
    text = str(refused.value)
    assert "internal" not in text and "softmax" in text and "logits" in text, text
    assert "pass_through" not in text, text
