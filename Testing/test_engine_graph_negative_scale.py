"""Graph presets and norms with a negative scale γ (trained nets carry them): the sign matters only on a path that
reaches a ReLU (z⁺'s Deep Taylor argument); a layer whose relevance comes through a norm to LeakyReLU is
"normalised" (the base rule) whatever the sign of γ. A refusal names every refused layer at once, with one
``rules=`` dict that, pasted verbatim, runs."""
from __future__ import annotations

import ast
import re

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.engine import explain
from NeuroRelevanceLib.errors import InputError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]
GRAPH = ("graph-epsilon-plus", "graph-deep-taylor", "graph-alpha1-beta0")
#: the base rule each graph preset gives a rectified/normalised conv that does not consume the input
BASE = {"graph-epsilon-plus": "ZPlus", "graph-deep-taylor": "ZPlus", "graph-alpha1-beta0": "AlphaBeta"}


def _net(activation: type[nn.Module], negative: bool, seed: int = 0) -> nn.Sequential:
    """conv → InstanceNorm(affine) → act → conv → InstanceNorm(affine) → act → pool → head (the nnU-Net/DynUNet
    block with LeakyReLU); ``negative``: γ < 0 in one channel of each norm, as training leaves them."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.InstanceNorm3d(4, affine=True), activation(),
                        nn.Conv3d(4, 4, 3, padding=1), nn.InstanceNorm3d(4, affine=True), activation(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        for index in (1, 4):
            net[index].weight.copy_(0.5 + torch.rand(4))
            net[index].bias.normal_(0.0, 0.2)
            if negative:
                net[index].weight[index % 4] = -0.8   # channel 1 in the first norm, channel 0 in the second
    return net.double().eval()


def _x(shape=(1, 1, 5, 5, 5), seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("preset", GRAPH)
def test_a_negative_scale_before_leaky_relu_changes_nothing(preset):
    """With LeakyReLU no path reaches a ReLU: the verdict is "normalised" for either sign of γ, so the negative-γ
    net runs and gets exactly the rules (and reasons) of the positive-γ one."""
    x = _x()
    positive = explain(_net(nn.LeakyReLU, False), x, preset=preset, target=0, dtype=torch.float64).rules
    net = _net(nn.LeakyReLU, True)
    assert float(net[1].weight.min()) < 0 and float(net[4].weight.min()) < 0
    negative = explain(net, x, preset=preset, target=0, dtype=torch.float64).rules
    assert negative == positive
    assert "normalised through InstanceNorm3d" in negative["3"] and BASE[preset] in negative["3"], negative["3"]


def test_a_negative_scale_before_leaky_relu_runs_in_an_exported_graph_too():
    """The functional (aten) norms read γ from the graph's constants: the same verdict as the module."""
    net, x = _net(nn.LeakyReLU, True), _x()
    module = explain(net, x, preset="graph-epsilon-plus", target=1, dtype=torch.float64).rules
    exported = explain(torch.export.export(net, (x,)), x, preset="graph-epsilon-plus", target=1,
                       dtype=torch.float64).rules
    assert "normalised" in exported["3"] and "ZPlus" in exported["3"], exported
    assert module["3"].split(": ")[-1] == exported["3"].split(": ")[-1]


def _suggested(message: str) -> dict:
    found = re.findall(r"rules=(\{[^}]*\})", message)
    assert len(found) == 1, message
    return ast.literal_eval(found[0])


@pytest.mark.parametrize("preset", GRAPH)
def test_every_refused_layer_is_named_at_once_and_the_suggested_dict_runs(preset):
    """Two convs reach a ReLU through a norm with a negative γ: one error names both, with one ``rules=`` dict
    (the base rule: z⁺/αβ redistribute without inflating; ε would divide by the un-normalised output, so it is not
    proposed); pasted verbatim, it runs, and gives those layers that rule."""
    net, x = _net(nn.ReLU, True), _x()
    with pytest.raises(InputError) as info:
        explain(net, x, preset=preset, target=0, dtype=torch.float64)
    message = str(info.value)
    suggested = _suggested(message)
    assert set(suggested) == {"0", "3"}, message
    assert "epsilon" not in suggested.values(), message
    assert "'0'" in message and "'3'" in message and "negative scale" in message, message
    assert "'epsilon'" not in message, message
    with pytest.raises(InputError) as partly:          # a layer the user names is not refused again
        explain(net, x, preset=preset, target=0, dtype=torch.float64, rules={"0": suggested["0"]})
    assert _suggested(str(partly.value)) == {"3": suggested["3"]}, str(partly.value)
    e = explain(net, x, preset=preset, target=0, dtype=torch.float64, rules=suggested)
    assert BASE[preset] in e.rules["3"], e.rules["3"]
    assert e.rules["3"].startswith("Conv3d: "), e.rules["3"]      # the user's rule: no graph verdict recorded
    positive = explain(_net(nn.ReLU, False), x, preset=preset, target=0, dtype=torch.float64).rules
    assert "output rectified through InstanceNorm3d" in positive["3"], positive["3"]


class _Branches(nn.Module):
    """One conv, two branches: norm ``n1`` → ``first`` activation, and norm ``n2`` → ``second`` activation (or a
    sum when ``second`` is None); summed into a head."""

    def __init__(self, first: type[nn.Module], second: type[nn.Module] | None) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 3, padding=1)
        self.n1, self.n2 = nn.GroupNorm(1, 3), nn.GroupNorm(1, 3)
        self.first = first()
        self.second = second() if second is not None else None
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        h = self.conv(x)
        a = self.first(self.n1(h))
        b = self.second(self.n2(h)) if self.second is not None else h
        return self.head((a + b).mean((2, 3, 4)))


@pytest.mark.parametrize("first,second,refused", [
    (nn.LeakyReLU, nn.ReLU, False),   # the negative γ is on the LeakyReLU path: the ReLU path's norm is positive
    (nn.ReLU, nn.LeakyReLU, True),    # the negative γ is on the ReLU path: z⁺ would credit the wrong inputs there
    (nn.ReLU, None, True),            # the ReLU path is negative, the other path a sum: still normalised → base rule
])
def test_only_a_negative_scale_on_the_way_to_a_relu_is_refused(first, second, refused):
    torch.manual_seed(0)
    net = _Branches(first, second).double().eval()
    with torch.no_grad():
        net.n1.weight.copy_(torch.tensor([0.9, -0.6, 1.1]))
    x = _x()
    if refused:
        with pytest.raises(InputError, match=r"negative scale.*rules=\{'conv': 'zplus'\}"):
            explain(net, x, preset="graph-epsilon-plus", target=0, dtype=torch.float64)
    else:
        rules = explain(net, x, preset="graph-epsilon-plus", target=0, dtype=torch.float64).rules
        assert "normalised" in rules["conv"] and "ZPlus" in rules["conv"], rules["conv"]


def test_a_negative_batchnorm_scale_before_a_relu_does_not_matter_where_the_layer_gets_epsilon():
    """An unfolded BatchNorm is an affine layer, not a norm: a conv whose other path feeds a sum with no norm on the
    way gets ε, which does not depend on the sign that follows, so nothing is refused."""
    torch.manual_seed(0)
    bn = nn.BatchNorm3d(3)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.head = nn.Conv3d(1, 3, 3, padding=1), bn, nn.Linear(3, 1)

        def forward(self, x):
            h = self.conv(x)
            return self.head((torch.relu(self.bn(h)) + h).mean((2, 3, 4)))

    net = Net().double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.9, -0.6, 1.1]))
        bn.running_var.fill_(1.5)
    rules = explain(net, _x(), preset="graph-epsilon-plus", target=0, dtype=torch.float64).rules
    assert "per-channel affine" in rules["bn"], rules["bn"]   # not folded: the conv's output is used twice
    assert "Epsilon" in rules["conv"] and "feeds a sum" in rules["conv"], rules["conv"]


def test_a_dense_layer_whose_base_rule_is_epsilon_is_not_refused():
    """``graph-epsilon-plus`` gives dense layers ε (its base ``epsilon-plus`` does), whose result does not depend on
    the sign after it: Linear → LayerNorm (γ < 0 in one feature) → ReLU runs with ε; αβ there is refused."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 2)).double().eval()
    with torch.no_grad():
        net[1].weight[2] = -0.9
    x = _x((1, 6))
    rules = explain(net, x, preset="graph-epsilon-plus", target=1, dtype=torch.float64).rules
    assert "Epsilon" in rules["0"], rules["0"]
    with pytest.raises(InputError, match=r"rules=\{'0': 'alpha1beta0'\}"):
        explain(net, x, preset="graph-alpha1-beta0", target=1, dtype=torch.float64)
