"""The model-copy cache (engine/cache.py): a second call on an unchanged model reuses our copy and its graph,
and ANY change a forward could see — weights in place, a new parameter, a buffer, a flag, a list entry, a
submodule, a patched forward, load_state_dict — gives the map of the changed model, never a stale one."""
from __future__ import annotations

import copy
import gc

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import cache, clear_cache, explain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
        self.act = nn.ReLU()
        self.c2 = nn.Conv3d(4, 3, 3, padding=1)
        self.skip = True
        self.scales = [1.0, 1.0]
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        h = self.act(self.bn(self.c1(x))) * self.scales[0]
        y = self.c2(h)
        if self.skip:
            y = y + h[:, :3]
        return self.fc(y.mean((2, 3, 4)))


def _x(seed=0):
    return torch.randn(1, 1, 8, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _map(model, x):
    return explain(model, x, target=1, dtype=torch.float64).relevance


def _entry(model):
    return cache._ENTRIES.get(model, {}).get(("cpu", torch.float64))


def test_second_call_reuses_the_copy_and_the_graph():
    clear_cache()
    model, x = Flagged().double().eval(), _x()
    first = explain(model, x, target=1, dtype=torch.float64)
    work = _entry(model).work
    second = explain(model, _x(1), target=1, dtype=torch.float64)
    assert _entry(model).work is work
    assert "graph captured on an earlier call, checked again on this input" in second.graph_check
    assert "earlier call" not in first.graph_check
    assert torch.equal(explain(copy.deepcopy(model), _x(1), target=1, dtype=torch.float64).relevance,
                       second.relevance)


def _set_weight_in_place(m):
    with torch.no_grad():
        m.c2.weight.mul_(-2.0)


def _new_parameter(m):
    m.c2.weight = nn.Parameter(torch.randn_like(m.c2.weight))


def _buffer(m):
    m.bn.running_mean.add_(0.7)


def _flag(m):
    m.skip = False


def _list_entry(m):
    m.scales[0] = 3.0


def _submodule(m):
    m.act = nn.Tanh()


def _patched_forward(m):
    conv = m.c2
    conv.forward = lambda t: F.conv3d(t, conv.weight * 0.5, conv.bias, padding=1)


def _state_dict(m):
    other = Flagged().double()
    m.load_state_dict(other.state_dict())


def _data_swap(m):
    m.fc.weight.data = torch.randn_like(m.fc.weight)


CHANGES = [_set_weight_in_place, _new_parameter, _buffer, _flag, _list_entry, _submodule, _patched_forward,
           _state_dict, _data_swap]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_any_change_gives_the_changed_models_map(change):
    model, x = Flagged().double().eval(), _x()
    before = _map(model, x)
    change(model)
    fresh = _map(copy.deepcopy(model), x)        # a model the cache has never seen
    after = _map(model, x)
    assert not torch.equal(fresh, before), "the change should matter for this test"
    assert torch.equal(after, fresh)


def test_entries_die_with_their_model_and_are_bounded():
    clear_cache()
    models = [Flagged().double().eval() for _ in range(cache.MAX_ENTRIES + 2)]
    for m in models:
        _map(m, _x())
    assert sum(_entry(m) is not None for m in models) == cache.MAX_ENTRIES
    kept = models[-1]
    ref = _entry(kept)
    del models, m
    gc.collect()
    assert len(cache._ENTRIES) == 1 and _entry(kept) is ref
    clear_cache()
    assert _entry(kept) is None


def test_inference_tensors_are_never_cached():
    with torch.inference_mode():
        model = Flagged().double().eval()
    assert cache.fingerprint(model) is None
    _map(model, _x())
    assert _entry(model) is None


def test_a_cached_graph_that_fails_the_check_is_captured_afresh():
    """Whatever makes every cached graph wrong (here: another model's graphs planted in the entry), the call
    captures again instead of refusing, and the map is the model's."""
    clear_cache()
    model, other, x = Flagged().double().eval(), Flagged().double().eval(), _x()
    _map(model, x)
    _map(other, x)
    wrong = _entry(other).graphs[("torch.fx", None)]
    shape = tuple(x.shape)
    planted = {("torch.fx", None): wrong, ("program", shape): torch.export.export(other, (x,))}
    planted.update({(name, shape): wrong for name in ("torch.export", "functionalised", "torchscript (traced)")})
    _entry(model).graphs.update(planted)
    e = explain(model, x, target=1, dtype=torch.float64)
    assert torch.equal(e.relevance, _map(copy.deepcopy(model), x)) and e.graph_source == "torch.fx"
    assert all(g is not planted.get(k) for k, g in _entry(model).graphs.items())
