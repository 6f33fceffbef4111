"""Coverage matrix on networks nobody here wrote (MONAI 1.6.1, small sizes): every network × format
(nn.Module, torch.export program, torch.jit.script where MONAI's code scripts) × preset runs on a graph that
reproduced the model's output, with a finite map. Oracles on the piecewise-linear variants (float64,
stabilizer 0): LRP-0 == gradient × input with biases and BatchNorm statistics; LRP-0 (all of them) and z⁺
(where no neuron can receive relevance without a positive contribution) conserve exactly on bias-free copies.
VNet (45 M parameters at any size) is run once here; ``python Testing/monai_nets.py VNet`` runs its matrix.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("monai")
import monai_nets as mn  # noqa: E402
from engine_nets_helpers import grad_times_input, own_conservation  # noqa: E402
from NeuroRelevanceLib.engine import LRP0, PRESETS, UnsupportedOperatorError, ZPlus, explain  # noqa: E402
from NeuroRelevanceLib.engine.validate import InflatedRelevanceError  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]

MATRIX = [n for n in mn.NETS if n != "VNet"]
ORACLE = [n for n in MATRIX if mn.NETS[n].oracle]
_CACHE: dict = {}
#: ε on every conv of conv → InstanceNorm → LeakyReLU divides the norm's relevance by the un-normalised output:
#: |ΣR| ~3e7 times the output, refused (docs/engine.md, "Refused: inflated maps")
INFLATED = {("BasicUNet", "epsilon")}


def _built(name: str, fmt: str):
    """(model, x, the model in format ``fmt``), converted once per session."""
    if name not in _CACHE:
        _CACHE[name] = (mn.make(name), mn.example(name), {})
    model, x, formats = _CACHE[name]
    if fmt not in formats:
        formats[fmt] = mn.convert(model, x, fmt)
    return model, x, formats[fmt]


def _cases():
    for name in MATRIX:
        for fmt in mn.FORMATS:
            if fmt == "scripted" and not mn.NETS[name].scriptable:
                continue
            yield pytest.param(name, fmt, id=f"{name}-{fmt}")


@pytest.mark.parametrize("name, fmt", list(_cases()))
def test_every_preset_runs_on_a_verified_graph(name, fmt):
    model, x, obj = _built(name, fmt)
    expected = mn.select(name)(model(x))
    for preset in PRESETS:
        if (name, preset) in INFLATED:
            with pytest.raises(InflatedRelevanceError, match="epsilon-plus"):
                explain(obj, x, preset=preset, **mn.explain_kwargs(name))
            continue
        e = explain(obj, x, preset=preset, **mn.explain_kwargs(name))   # float32, as users run it
        assert e.relevance.shape == x.shape and torch.isfinite(e.relevance).all(), preset
        assert "reproduced model(x)" in e.graph_check, (preset, e.graph_check)
        assert torch.allclose(e.target_value.double(), expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
        assert e.relevance.abs().sum() > 0


def _oracle_cases():
    for name in ORACLE:
        yield pytest.param(name, "module", id=f"{name}-module")
        if mn.NETS[name].piecewise_linear:  # the matrix's own conversions are piecewise linear: reuse them
            for fmt in ("exported", "scripted"):
                yield pytest.param(name, fmt, id=f"{name}-{fmt}")


def _lrp0(obj, x, name):
    return explain(obj, x, preset=None, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0,
                   **mn.explain_kwargs(name))


@pytest.mark.parametrize("name, fmt", list(_oracle_cases()))
def test_lrp0_equals_gradient_times_input(name, fmt):
    if fmt == "module":
        model, x = mn.make(name, piecewise_linear=True), mn.example(name)
        obj = model
    else:
        model, x, obj = _built(name, fmt)
    e = _lrp0(obj, x, name)
    expected, value = grad_times_input(model, x, mn.select(name))
    err = float((e.relevance - expected).abs().max() / expected.abs().max())
    assert err < 1e-10, (name, fmt, err, e.graph_check)
    assert torch.allclose(e.target_value, value, rtol=1e-12)
    if name == "BasicUNet" and fmt == "module":  # fx misses its isinstance-guarded skips: found and left
        assert e.graph_source.startswith("torch.export") and "torch.fx:" in e.graph_check


@pytest.mark.parametrize("name", ORACLE)
def test_conservation_on_bias_free_copies(name):
    model, x = mn.bias_free(mn.make(name, piecewise_linear=True)), mn.example(name)
    e = _lrp0(model, x, name)
    assert float(own_conservation(e.relevance, e.target_value).max()) <= 1e-9
    if name in ("DenseNet121", "HighResNet"):
        # z⁺ is exact wherever every neuron that receives relevance has a positive contribution; in the other
        # nets a residual split or a leaky slope gives relevance to neurons without one (documented)
        z = explain(model, x, preset=None, rules={"*": ZPlus(0.0)}, dtype=torch.float64, stabilizer=0.0,
                    **mn.explain_kwargs(name))
        assert float(own_conservation(z.relevance, z.target_value).max()) <= 1e-9


@pytest.mark.parametrize("name", [n for n in MATRIX if mn.NETS[n].pass_through])
def test_gating_products_are_refused_without_pass_through(name):
    _, x, obj = _built(name, "module")
    kwargs = {k: v for k, v in mn.explain_kwargs(name).items() if k != "pass_through"}
    with pytest.raises(UnsupportedOperatorError, match=r"pass_through=\{'mul'\}"):
        explain(obj, x, **kwargs)


def test_vnet_runs():
    model, x = mn.make("VNet"), mn.example("VNet")
    e = explain(model, x, **mn.explain_kwargs("VNet"))
    assert torch.isfinite(e.relevance).all() and "reproduced model(x)" in e.graph_check
