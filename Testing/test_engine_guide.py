"""The worked examples of docs/engine.md ("Adding an operator", "Adding a rule") run as written, and their
results are checked against independent oracles (autograd with the gate held fixed; the ε-rule by hand)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from NeuroRelevanceLib.engine import presets, rules

DOC = Path(__file__).resolve().parents[1] / "docs" / "engine.md"


def _example(heading: str) -> str:
    text = DOC.read_text()
    section = text.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"one example under {heading!r}"
    return blocks[0]


def test_adding_an_operator_example():
    ns: dict = {}
    exec(compile(_example("Adding an operator"), str(DOC), "exec"), ns)
    assert "has no relevance rule" in ns["message"] and "pass_through" in ns["message"]
    e, model, x = ns["e"], ns["model"], ns["x"]
    assert e.max_conservation_error < 1e-12
    # oracle: LRP-0 through a bias-free ReLU net with the gate held fixed = gradient × input
    xg = x.clone().requires_grad_(True)
    h = torch.relu(model.signal(xg)) * torch.sigmoid(model.gate(xg)).detach()
    out = model.head(h.mean((2, 3, 4)))[:, 1].sum()
    (grad,) = torch.autograd.grad(out, xg)
    assert torch.allclose(e.relevance, (grad * x).detach(), atol=1e-14)
    # registration was scoped: the model is refused again
    from NeuroRelevanceLib.engine import UnsupportedOperatorError, explain
    with pytest.raises(UnsupportedOperatorError):
        explain(model, x, dtype=torch.float64)


def test_adding_a_rule_example():
    ns: dict = {}
    try:
        exec(compile(_example("Adding a rule"), str(DOC), "exec"), ns)
        e, model, x = ns["e"], ns["model"], ns["x"]
        lin = model[1]
        xf = x.flatten(1)
        z = xf @ lin.weight.T + lin.bias
        eps = 0.25 * float(z.std())
        den = z + eps * torch.where(z >= 0, 1.0, -1.0)
        r = torch.zeros_like(z)
        r[:, 2] = z[:, 2]
        by_hand = xf * ((r / den) @ lin.weight)
        assert torch.allclose(e.relevance.flatten(1), by_hand, atol=1e-14)
        assert "epsilon-std" in presets.PRESETS
    finally:
        presets.unregister_preset("epsilon-std")
        rules._BY_NAME.pop("epsilonstd", None)
        rules.RULE_NAMES = tuple(rules._BY_NAME)
