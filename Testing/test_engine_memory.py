"""What the forward pass keeps for the walk: cheap activations (ReLU of a kept value, an unfoldable BatchNorm,
views) are recomputed in the walk instead of kept, with identical maps; layers shared with the model's own
forward keep no rule companions."""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib import nets
from NeuroRelevanceLib.engine.assign import RuleOptions, assign_rules
from NeuroRelevanceLib.engine.capture import prepare
from NeuroRelevanceLib.engine.graph import build_plan
from NeuroRelevanceLib.engine.propagate import backward, forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bytes(rec) -> int:
    return sum(v.numel() * v.element_size() for v in rec.values.values() if isinstance(v, torch.Tensor))


def _walk(model, x, preset, recompute):
    source = prepare(model, x, torch.device("cpu"), torch.float64)
    plan = build_plan(source.candidates[0].build())
    assign_rules(plan, RuleOptions(preset, None, 1e-6, 0.25, 1e-6, -1.0, 1.0, False, set()))
    rec, out, _ = forward(plan, x, recompute=recompute)
    kept = _bytes(rec)
    r_in, _ = backward(plan, rec, out, 1e-6)
    return kept, r_in


@pytest.mark.parametrize("preset", [None, "epsilon-plus"])
def test_cheap_activations_are_recomputed_not_kept(preset):
    model = nets.build("PreActResNet3d", seed=0, widths=(4, 8, 8), units=(2, 2, 1)).double().eval()
    x = torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kept, r_in = _walk(model, x, preset, recompute=True)
    kept_all, r_all = _walk(model, x, preset, recompute=False)
    assert torch.allclose(r_in, r_all, rtol=0, atol=1e-15 * float(r_all.abs().max()))
    # each unit's pre-activation relu(bn1(x)) is remade from the kept sum x: a quarter or more is not kept
    assert kept <= 0.8 * kept_all, (kept, kept_all)
