"""Graph presets on normalised networks: a conv whose output reaches a ReLU through Group/Instance/LayerNorm
(or BatchNorm) with a positive scale is rectified (the base rule, z⁺); one that reaches LeakyReLU/PReLU or a sum
is not (ε) unless a norm lies on the way (its relevance is then not proportional to its own output: ε would divide
by an unrelated value, so the base rule); a norm with a negative scale on the way to a ReLU is refused; the rules
record says which and why. MONAI's SegResNet/UNet/BasicUNet. A map inflated by a near-zero denominator is refused,
whatever the preset."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import explain
from NeuroRelevanceLib.engine.validate import INFLATED_REFUSE, InflatedRelevanceError
from NeuroRelevanceLib.errors import InputError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]
GRAPH = ("graph-epsilon-plus", "graph-deep-taylor", "graph-alpha1-beta0")


class NormNet(nn.Module):
    """stem → GroupNorm → ReLU; a → InstanceNorm → LeakyReLU → b, added to the stem's branch; c → GroupNorm
    (one negative γ) → ReLU; d → functional group_norm → ReLU; mean → head."""

    def __init__(self, bias: bool = True, norms: bool = True) -> None:
        super().__init__()
        self.norms = norms
        self.stem = nn.Conv3d(1, 4, 3, padding=1, bias=bias)
        self.gn1 = nn.GroupNorm(2, 4)
        self.a = nn.Conv3d(4, 4, 3, padding=1, bias=bias)
        self.in1 = nn.InstanceNorm3d(4, affine=True)
        self.b = nn.Conv3d(4, 4, 3, padding=1, bias=bias)
        self.c = nn.Conv3d(4, 4, 3, padding=1, bias=bias)
        self.gn2 = nn.GroupNorm(2, 4)
        self.d = nn.Conv3d(4, 4, 1, bias=bias)
        self.gd = nn.Parameter(torch.ones(4))
        self.head = nn.Linear(4, 2, bias=bias)

    def forward(self, x):
        h = F.relu(self.gn1(self.stem(x)))
        h = h + self.b(F.leaky_relu(self.in1(self.a(h)), 0.1))
        h = F.relu(self.gn2(self.c(h)))
        h = F.relu(F.group_norm(self.d(h), 2, self.gd) if self.norms else self.d(h))
        return self.head(h.mean((2, 3, 4)))


def _normnet(seed: int = 0, bias: bool = True, norms: bool = True, negative: bool = False) -> NormNet:
    torch.manual_seed(seed)
    net = NormNet(bias, norms)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("gn", "in1", "gd")):
                p.copy_(0.5 + torch.rand(p.shape) if name.endswith(("weight", "gd")) else 0.0 * p)
            else:
                nn.init.normal_(p, 0.0, 0.4)
        if negative:
            net.gn2.weight[1] = -0.7        # a negative scale: the sign z⁺ relies on flips in channel 1
    if not norms:
        net.gn1, net.in1, net.gn2 = nn.Identity(), nn.Identity(), nn.Identity()
    return net.double().eval()


def _x(shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _formats(net, x):
    yield "module", net
    yield "exported", torch.export.export(net, (x,))
    yield "scripted", torch.jit.script(net)


def test_the_rules_record_names_each_layers_reason():
    net, x = _normnet(), _x((1, 1, 6, 6, 6))
    for fmt, obj in _formats(net, x):
        rules = explain(obj, x, preset="graph-epsilon-plus", target=0, dtype=torch.float64).rules
        assert "ZPlus" in rules["stem"] and "output rectified through" in rules["stem"], (fmt, rules["stem"])
        assert "ZPlus" in rules["a"] and "output normalised through" in rules["a"] and "leaky" in rules["a"].lower() \
            and "not a rectifier" in rules["a"], (fmt, rules["a"])
        assert "Epsilon" in rules["b"] and "feeds a sum" in rules["b"], (fmt, rules["b"])
        for layer in ("c", "d"):
            assert "ZPlus" in rules[layer] and "output rectified through" in rules[layer], (fmt, rules[layer])
        assert "Epsilon" in rules["head"] and "model's output" in rules["head"], (fmt, rules["head"])
        assert not any("concatenation" in r for r in rules.values()), (fmt, rules)
    plain = explain(_normnet(norms=False), x, preset="graph-epsilon-plus", target=0, dtype=torch.float64).rules
    assert "Epsilon" in plain["a"] and "not a rectifier" in plain["a"] and "normalised" not in plain["a"], plain["a"]
    assert "ZPlus" in plain["stem"] and "(output rectified): ZPlus(" in plain["stem"], plain["stem"]


@pytest.mark.parametrize("preset", GRAPH)
def test_a_norm_with_a_negative_scale_is_refused_and_an_override_is_the_way_out(preset):
    net, x = _normnet(negative=True), _x((1, 1, 6, 6, 6))
    base = "alpha1beta0" if preset.endswith("beta0") else "zplus"    # the base rule, not ε (it would inflate)
    with pytest.raises(InputError, match=rf"'c'.*negative scale.*rules=\{{'c': '{base}'\}}"):
        explain(net, x, preset=preset, target=0, dtype=torch.float64)
    e = explain(net, x, preset=preset, target=0, dtype=torch.float64, rules={"c": "zplus"})
    assert e.rules["c"].startswith("Conv3d: ZPlus("), e.rules["c"]


def test_layer_norm_and_batch_statistics_pass_the_rectification_too():
    """LayerNorm over channels-last features and a BatchNorm without running statistics (batch statistics, like
    InstanceNorm) between a dense/conv layer and a ReLU: rectified; their negative scale: not."""
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 2)).double().eval()
    bn = nn.BatchNorm3d(3, track_running_stats=False)
    conv = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), bn, nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Linear(3, 2)).double().eval()
    for net, x in ((dense, _x((1, 6))), (conv, _x((2, 1, 5, 5, 5)))):
        rules = explain(net, x, preset="graph-alpha1-beta0", target=1, dtype=torch.float64).rules
        assert "AlphaBeta" in rules["0"] and "output rectified through" in rules["0"], rules["0"]
        with torch.no_grad():
            net[1].weight[0] = -1.0
        with pytest.raises(InputError, match="negative scale"):
            explain(net, x, preset="graph-alpha1-beta0", target=1, dtype=torch.float64)


@pytest.mark.parametrize("preset", GRAPH)
@pytest.mark.parametrize("seed", [0, 1])
def test_graph_presets_conserve_on_the_bias_free_copy(preset, seed):
    """Bias-free and norm-free (a norm's mean subtraction is a bias at a given input), with LeakyReLU and the residual
    add: z⁺, α1β0, w² and ε each hand on all they receive, so the input's relevance sums to the explained logit:
    |ΣR − f| / |f| < 1e-6 (f from the model itself)."""
    net, x = _normnet(seed, bias=False, norms=False), _x((2, 1, 6, 6, 6), seed)
    e = explain(net, x, preset=preset, target=0, dtype=torch.float64, epsilon=1e-12)
    own = (e.relevance.flatten(1).sum(1) - net(x)[:, 0]).abs() / net(x)[:, 0].abs()
    assert float(own.max()) < 1e-6, (preset, own)
    assert e.max_conservation_error < 1e-6


def _exploding() -> tuple[nn.Module, torch.Tensor]:
    """conv(1x1, bias) → InstanceNorm → LeakyReLU → mean → head, on an input where one voxel's pre-activation is
    1e-10 while its terms are ±1: ε divides the norm's O(1) relevance by 1e-10 + ε."""
    net = nn.Sequential(nn.Conv3d(1, 1, 1), nn.InstanceNorm3d(1), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool3d(1),
                        nn.Flatten(), nn.Linear(1, 1)).double().eval()
    x = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).reshape(1, 1, 2, 2, 2).clone()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-float(x[0, 0, 1, 1, 1]) + 1e-10)   # z = 1e-10 at the last voxel
        net[5].weight.fill_(1.0)
        net[5].bias.fill_(0.0)
    return net, x


@pytest.mark.parametrize("preset", ["epsilon", "graph-epsilon-plus", "graph-deep-taylor", "alpha2-beta1"])
def test_an_inflated_map_is_refused_with_where_and_the_fix(preset):
    net, x = _exploding()
    with pytest.raises(InflatedRelevanceError) as info:
        explain(net, x, preset=preset, target=0, dtype=torch.float64, epsilon=1e-12, rules={"0": "epsilon"})
    message = str(info.value)
    assert isinstance(info.value, InputError)
    assert "epsilon-plus" in message and "epsilon=" in message and "layer_totals" in message, message
    assert "below '_0'" in message, message    # the conv, the layer recorded nearest the input
    ratio = float(message.split(" times")[0].split()[-1])
    assert ratio > INFLATED_REFUSE
    e = explain(net, x, preset=preset, target=0, dtype=torch.float64, epsilon=0.25, rules={"0": "epsilon"})
    assert e.max_conservation_error < INFLATED_REFUSE


def test_legitimate_inflation_is_not_refused():
    """α2β1 inflates by design where a neuron has no negative contribution (2x per layer): kept, with a warning."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(5):
        layers += [nn.Linear(4, 4, bias=False), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(4, 1, bias=False)).double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.uniform_(0.1, 1.0)       # all positive: z⁻ = 0 everywhere, α2β1 doubles at each layer
    x = torch.rand(1, 4, dtype=torch.float64) + 0.1
    with pytest.warns(UserWarning, match="inflated"):
        e = explain(net, x, preset="alpha2-beta1", target=0, dtype=torch.float64)
    assert 10 < float(e.relevance.sum() / e.target_value.sum()) < INFLATED_REFUSE


# ---- MONAI networks (pinned in requirements/test.txt) ---------------------------------------------------------
monai_nets = pytest.importorskip("monai.networks.nets")


def _monai(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    build = {"SegResNet": lambda: monai_nets.SegResNet(3, init_filters=8, in_channels=1, out_channels=2,
                                                       blocks_down=(1, 1), blocks_up=(1,)),
             "BasicUNet": lambda: monai_nets.BasicUNet(3, 1, 2, features=(4, 4, 4, 4, 4, 4)),
             "UNet": lambda: monai_nets.UNet(3, 1, 2, channels=(4, 8), strides=(2,), num_res_units=1)}[name]
    shape = (1, 1, 32, 16, 16) if name == "BasicUNet" else (1, 1, 16, 16, 16)   # BasicUNet halves 4 times
    return build().eval(), torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def _seg(x: torch.Tensor, **kw):
    return dict(target=1, mask=torch.ones(x.shape[2:]), **kw)


@pytest.mark.parametrize("preset", GRAPH)
def test_segresnet_graph_presets_conserve_as_users_run_them(preset):
    """GroupNorm → ReLU before every block conv: z⁺ there; float32 with MONAI's biases, as a user runs it
    (1e10 times inflated before; now |ΣR| stays below |f|, conservation error ~1 like epsilon-plus's)."""
    net, x = _monai("SegResNet")
    e = explain(net, x, preset=preset, **_seg(x))
    assert float(e.relevance.sum().abs() / e.target_value.abs().sum()) < 2.0, (preset, e.max_conservation_error)
    through = [k for k, v in e.rules.items() if "rectified through GroupNorm" in v]
    assert len(through) >= 3 and all("ZPlus" in e.rules[k] or "AlphaBeta" in e.rules[k] for k in through), e.rules
    assert not any("concatenation" in v for v in e.rules.values()), e.rules


@pytest.mark.parametrize("name, activation", [("UNet", "prelu"), ("BasicUNet", "leaky_relu")])
def test_monai_normalised_layers_name_their_activation(name, activation):
    """UNet: conv → InstanceNorm → PReLU; BasicUNet: conv → InstanceNorm → LeakyReLU: not rectified but normalised,
    so the base rule (ε there inflated BasicUNet 1e7 times), and the record says so. ε everywhere (preset
    'epsilon') on BasicUNet is refused, not returned."""
    net, x = _monai(name)
    for preset in GRAPH:
        e = explain(net, x, preset=preset, **_seg(x))
        assert e.max_conservation_error < 1.0, (preset, e.max_conservation_error)
        named = [v for v in e.rules.values() if activation in v.lower().replace("leakyrelu", "leaky_relu")]
        assert named and all("normalised" in v and "not a rectifier" in v and "Epsilon" not in v for v in named), \
            e.rules
    if name == "BasicUNet":
        with pytest.raises(InflatedRelevanceError, match="epsilon-plus"):
            explain(net, x, preset="epsilon", **_seg(x))


@pytest.mark.parametrize("name", ["SegResNet", "UNet", "BasicUNet"])
def test_monai_bias_free_copies_conserve_under_graph_presets(name):
    """Conv biases zero (the norms' mean subtraction stays: an input-dependent shift): measured 1e-5 to 1e-4."""
    net, x = _monai(name)
    free = copy.deepcopy(net).double()
    with torch.no_grad():
        for m in free.modules():
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
    for preset in GRAPH:
        e = explain(free, x.double(), preset=preset, dtype=torch.float64, epsilon=1e-12, **_seg(x))
        assert e.max_conservation_error < 1e-3, (name, preset, e.max_conservation_error)


def test_a_folded_batchnorm_before_a_sum_keeps_epsilon():
    """conv → BatchNorm (folded: relevance stays proportional to the layer's output) → residual add: ε, as without
    the BatchNorm; only a pass-through norm (Group/Instance/LayerNorm) makes ε ill-posed."""
    class Unit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.a = nn.Conv3d(1, 3, 3, padding=1), nn.Conv3d(3, 3, 3, padding=1)
            self.bn, self.gn = nn.BatchNorm3d(3), nn.GroupNorm(1, 3)
            self.b = nn.Conv3d(3, 3, 3, padding=1)

        def forward(self, x):
            h = F.relu(self.stem(x))
            return (h + self.bn(self.a(h)) + self.gn(self.b(h))).mean((2, 3, 4))

    net = Unit().double().eval()
    rules = explain(net, _x((1, 1, 5, 5, 5)), preset="graph-epsilon-plus", target=0, dtype=torch.float64).rules
    assert "Epsilon" in rules["a"] and "folded" in rules["a"] and "feeds a sum" in rules["a"], rules["a"]
    assert "normalised" not in rules["a"], rules["a"]
    assert "ZPlus" in rules["b"] and "output normalised through GroupNorm" in rules["b"], rules["b"]
