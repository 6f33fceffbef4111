"""Index- and mask-valued operators carry no relevance, and an engine hint is never a trap.

Max-unpooling with the pool's indices and ``torch.where`` on a comparison route relevance like the
gradient (exact: LRP-0 equals gradient × input, float64); a boolean comparison is never named as an
operator to pass through; following any ``pass_through`` hint the engine gives yields a finite map or
one clear error, never a raw ``RuntimeError``.
"""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_nets_helpers import grad_times_input, graph_formats, lrp0, relative_error
from NeuroRelevanceLib.engine import UnsupportedOperatorError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]
D = torch.float64


class Unpool(nn.Module):
    def __init__(self, functional: bool = False):
        super().__init__()
        self.functional = functional
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2, return_indices=True)
        self.unpool = nn.MaxUnpool3d(2)
        self.c2 = nn.Conv3d(4, 2, 3, padding=1)

    def forward(self, x):
        p, idx = self.pool(F.relu(self.c1(x)))
        u = F.max_unpool3d(p, idx, 2) if self.functional else self.unpool(p, idx)
        return self.c2(u).mean((2, 3, 4))


class Where(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv3d(1, 4, 3, padding=1), nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        return self.fc(F.relu(torch.where(a > b, a, b)).mean((2, 3, 4)))


class MaskedMul(nn.Module):
    """h * (h > 0.1): a product of an activation and its own boolean mask cast to float."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.c(x)
        return self.fc((h * (h > 0.1).to(h.dtype)).mean((2, 3, 4)))


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.s, self.g = nn.Conv3d(1, 4, 3, padding=1), nn.Conv3d(1, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc((torch.relu(self.s(x)) * torch.sigmoid(self.g(x))).mean((2, 3, 4)))


@pytest.mark.parametrize("model", [Unpool(), Unpool(functional=True), Where()], ids=["module", "functional", "where"])
def test_index_and_mask_operators_route_like_the_gradient(model):
    torch.manual_seed(0)
    model = model.to(D).eval()
    x = torch.randn(1, 1, 8, 8, 8, dtype=D)
    gxi, _ = grad_times_input(model, x, lambda out: out[:, 1])
    unpool = isinstance(model, Unpool)  # torch.export and torch.jit.trace themselves fail on max_unpool3d (2.13)
    for fmt, m in graph_formats(model, x, exported=not unpool, traced=not unpool).items():
        assert relative_error(lrp0(m, x, 1).relevance, gxi) < 1e-9, fmt


@pytest.mark.parametrize("model", [MaskedMul(), Gate()], ids=["masked", "gate"])
def test_following_every_hint_gives_a_map_or_one_clear_error(model):
    torch.manual_seed(1)
    model = model.to(D).eval()
    x = torch.randn(1, 1, 8, 8, 8, dtype=D)
    names: set = set()
    for _ in range(6):
        try:
            e = lrp0(model, x, 1, pass_through=names)
        except UnsupportedOperatorError as refused:
            hint = re.search(r"pass_through=\{'([^']+)'\}", str(refused))
            assert hint, str(refused)
            assert hint.group(1) not in ("gt", "lt", "ge", "le", "eq", "ne", "__gt__"), str(refused)
            names.add(hint.group(1))
            continue
        assert torch.isfinite(e.relevance).all() and e.relevance.abs().sum() > 0
        return
    pytest.fail(f"still refused after following the hints {names}")
