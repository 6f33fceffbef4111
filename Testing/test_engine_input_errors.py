"""Bad calls to ``explain`` get one clear error naming the cause and the fix; a model that normalises its
input in place is explained like its out-of-place twin, and the caller's ``x`` is left untouched."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import explain
from NeuroRelevanceLib.errors import InputError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]
D = torch.float64


class Normalising(nn.Module):
    def __init__(self, inplace: bool):
        super().__init__()
        self.inplace = inplace
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)
        self.register_buffer("mu", torch.tensor(0.5))
        self.register_buffer("sd", torch.tensor(0.25))

    def forward(self, x):
        x = x.sub_(self.mu).div_(self.sd) if self.inplace else (x - self.mu) / self.sd
        return self.fc(F.relu(self.c1(x)).mean((2, 3, 4)))


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4 * 4, 3)).eval()


@pytest.mark.parametrize("fmt", ["module", "scripted"])
def test_model_that_normalises_its_input_in_place(fmt):
    torch.manual_seed(1)
    inplace = Normalising(True).to(D).eval()
    twin = Normalising(False).to(D).eval()
    twin.load_state_dict(inplace.state_dict())
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    x0 = x.clone()
    model = inplace if fmt == "module" else torch.jit.script(inplace)
    e = explain(model, x, dtype=D, target=1)
    ref = explain(twin, x, dtype=D, target=1)
    assert torch.equal(x, x0)
    assert torch.allclose(e.relevance, ref.relevance, rtol=1e-10, atol=1e-14)


def test_meta_device_input_or_model_is_one_clear_error():
    net = _net()
    with pytest.raises(InputError, match="meta"):
        explain(net, torch.empty(1, 1, 6, 6, 6, device="meta"))
    with pytest.raises(InputError, match="meta"):
        explain(copy.deepcopy(net).to("meta"), torch.randn(1, 1, 6, 6, 6))


def test_misspelled_keyword_names_it_and_close_matches():
    with pytest.raises(InputError, match=r"epsilom.*epsilon"):
        explain(_net(), torch.randn(1, 1, 6, 6, 6), epsilom=0.1)
    with pytest.raises(InputError, match=r"pass_trough.*pass_through"):
        explain(_net(), torch.randn(1, 1, 6, 6, 6), pass_trough={"mul"})


def test_rules_key_typo_suggests_only_user_visible_layer_names():
    with pytest.raises(InputError) as refused:
        explain(_net(), torch.randn(1, 1, 6, 6, 6), rules={"lienar": "epsilon", "1": "zplus"})
    text = str(refused.value)
    assert "'_0'" not in text and "'_3'" not in text, text
    assert "'0'" in text and "'3'" in text, text


def test_rules_given_as_a_string_names_the_fix():
    with pytest.raises(InputError, match=r"rules=\{'\*': 'zplus'\}"):
        explain(_net(), torch.randn(1, 1, 6, 6, 6), rules="zplus")


def test_input_with_too_many_axes_is_not_told_to_add_axes():
    with pytest.raises(InputError) as refused:
        explain(_net(), torch.randn(1, 1, 1, 6, 6, 6))
    assert "x[None, None]" not in str(refused.value) and "remove" in str(refused.value), str(refused.value)


def test_float_class_index_is_named_as_such():
    with pytest.raises(InputError) as refused:
        explain(_net(), torch.randn(1, 1, 6, 6, 6), target=1.0)
    text = str(refused.value)
    assert "fractional" not in text and "target=1" in text, text


class Branch(nn.Module):
    """A Python branch on a tensor value: torch.export fails (data-dependent), the traced graph is used."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv3d(1, 4, 3, padding=1), nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x) if x.mean() > 0.5 else self.b(x)
        return self.fc(torch.relu(h).mean((2, 3, 4)))


def test_graph_capture_attempts_do_not_flood_stderr(capfd):
    import warnings

    torch.manual_seed(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = explain(Branch().eval(), torch.rand(1, 1, 6, 6, 6))
    err = capfd.readouterr().err
    assert "def forward" not in err and "symbolic_shapes" not in err, err[:500]
    assert len(err.strip().splitlines()) <= 1, err[:500]
    assert not [w for w in caught if "TracerWarning" in type(w.message).__name__]
    assert "torch.export" in e.graph_check  # what was tried stays on record
