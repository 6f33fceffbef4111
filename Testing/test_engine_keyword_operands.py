"""Sums and products read their operands however they are passed: positionally or by keyword.

``torch.add(a, other=b)`` once shared relevance over ``a`` alone (the keyword operand was dropped from the
split), and ``torch.mul(h, other=h)`` passed through as if ``h`` were scaled by a constant. Oracle: LRP-0
(float64, stabilizer 0) equals gradient × input on piecewise-linear networks, in every graph format.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from engine_nets_helpers import grad_times_input, graph_formats, lrp0, relative_error
from NeuroRelevanceLib.engine import UnsupportedOperatorError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]
D = torch.float64
SUMS = ["add", "sub", "add_alpha", "method_add", "method_sub", "input_other", "rsub", "mul_const"]


class TwoBranches(nn.Module):
    """Two conv branches joined by a sum written with keyword operands, then ReLU → mean → dense."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.a = nn.Conv3d(1, 3, 3, padding=1)
        self.b = nn.Conv3d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        h = {"add": lambda: torch.add(a, other=b),
             "sub": lambda: torch.sub(a, other=b),
             "add_alpha": lambda: torch.add(a, other=b, alpha=0.5),
             "method_add": lambda: a.add(other=b),
             "method_sub": lambda: a.sub(other=b, alpha=2.0),
             "input_other": lambda: torch.add(input=a, other=b),
             "rsub": lambda: torch.rsub(a, other=b),
             "mul_const": lambda: torch.mul(a, other=3.0) + b}[self.how]()
        return self.fc(torch.relu(h).mean((2, 3, 4)))


@pytest.mark.parametrize("how", SUMS)
def test_keyword_operands_of_a_sum_share_relevance(how):
    torch.manual_seed(7)
    model = TwoBranches(how).to(D).eval()
    x = torch.randn(1, 1, 5, 5, 5, dtype=D)
    gxi, _ = grad_times_input(model, x, lambda out: out[:, 1])
    assert gxi.abs().max() > 0
    for fmt, m in graph_formats(model, x).items():
        e = lrp0(m, x, 1)
        assert relative_error(e.relevance, gxi) < 1e-9, (how, fmt, relative_error(e.relevance, gxi))


class SquareByKeyword(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3, padding=1, bias=False)
        self.fc = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(torch.mul(h, other=h).mean((2, 3, 4)))


def test_product_of_an_activation_with_itself_by_keyword_is_refused():
    torch.manual_seed(8)
    model = SquareByKeyword().to(D).eval()
    x = torch.randn(1, 1, 5, 5, 5, dtype=D)
    with pytest.raises(UnsupportedOperatorError, match="pass_through"):
        lrp0(model, x, 1)
