"""Saturating piecewise-linear activations (ReLU6, Hardtanh, clamp) follow the gradient: a saturated unit
passes no relevance on (its output does not change with its input), so LRP-0 equals gradient × input
(float64, stabilizer 0) on networks built from them, in every graph format."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_nets_helpers import grad_times_input, graph_formats, lrp0, relative_error

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]
D = torch.float64
KINDS = ["ReLU6", "Hardtanh", "F.relu6", "F.hardtanh", "clamp", "clamp_min", "clip", "method.clamp"]


class Saturating(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.act = {"ReLU6": nn.ReLU6(), "Hardtanh": nn.Hardtanh(-0.5, 1.0)}.get(kind, nn.Identity())
        self.c2 = nn.Conv3d(4, 3, 3, padding=1)
        with torch.no_grad():  # saturate a large share of units
            self.c1.weight.mul_(5.0)
            self.c1.bias.fill_(1.0)

    def forward(self, x):
        h = self.c1(x)
        k = self.kind
        if k in ("ReLU6", "Hardtanh"):
            h = self.act(h)
        elif k == "F.relu6":
            h = F.relu6(h)
        elif k == "F.hardtanh":
            h = F.hardtanh(h, -1.0, 2.0)
        elif k == "clamp":
            h = torch.clamp(h, 0.0, 3.0)
        elif k == "clamp_min":
            h = torch.clamp(h, min=0.0)
        elif k == "clip":
            h = torch.clip(h, -1.0, 1.0)
        elif k == "method.clamp":
            h = h.clamp(max=2.0)
        return self.c2(h).mean((2, 3, 4))


@pytest.mark.parametrize("kind", KINDS)
def test_saturated_units_pass_no_relevance(kind):
    torch.manual_seed(2)
    model = Saturating(kind).to(D).eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    gxi, _ = grad_times_input(model, x, lambda out: out[:, 1])
    for fmt, m in graph_formats(model, x).items():
        err = relative_error(lrp0(m, x, 1).relevance, gxi)
        assert err < 1e-9, (kind, fmt, err)
