"""No code runs from a model file unless it is trusted: crafted files against the library loaders.

Every payload in ``security_payloads`` creates a marker file when torch runs it. The first test
proves each trap is real (torch's own loaders spring it); the others give the same files to
``load_model``, to a card naming them as weights, to ``open_model`` and to ``explain()`` on a path,
and check that each refuses with one clear error and that no marker appears.
"""
import contextlib
import io
import warnings

import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model
from security_payloads import (  # noqa: F401 - payloads_fixture: the `payloads` fixture
    ALL,
    SPRUNG,
    TRUSTED_RUNS,
    card_for,
    example,
    payloads_fixture,
    tiny_net,
)

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.mark.parametrize("name", SPRUNG)
def test_each_trap_is_real_when_torch_loads_it_unguarded(payloads, name):
    payload = payloads[name]
    payload.reset()
    payload.spring_it()
    assert payload.fired(), f"{name}: the crafted file did not run its payload under torch's own loader"
    payload.reset()


@pytest.mark.parametrize("name", ALL)
def test_load_model_refuses_without_running_it(payloads, name):
    payload = payloads[name]
    payload.reset()
    with pytest.raises(InputError) as info:
        load_model(payload.path, device="cpu")
    assert not payload.fired()
    message = str(info.value)
    assert "\n" not in message and len(message) < 1200
    if not name.startswith("pickle") and name != "ts_python_global":
        assert "trusted=True" in message


@pytest.mark.parametrize("name", ALL)
def test_a_card_naming_the_file_as_weights_refuses_it(payloads, name, tmp_path):
    payload = payloads[name]
    payload.reset()
    (tmp_path / payload.path.name).write_bytes(payload.path.read_bytes())
    card = card_for(payload, tmp_path)
    with pytest.raises(InputError):
        load_model(card, device="cpu")
    assert not payload.fired()


@pytest.mark.parametrize("name", ALL)
def test_explain_on_a_path_refuses_without_running_it(payloads, name):
    from NeuroRelevanceLib.engine import explain

    payload = payloads[name]
    payload.reset()
    with pytest.raises(ValueError):
        explain(str(payload.path), example(), preset="epsilon-plus")
    assert not payload.fired()


@pytest.mark.parametrize("name", TRUSTED_RUNS)
def test_trusted_load_reaches_the_payload(payloads, name):
    """trusted=True hands the file to torch: the payload runs (that is what trust means)."""
    payload = payloads[name]
    payload.reset()
    with contextlib.suppress(InputError, ValueError):  # the payload broke the model after it ran
        load_model(payload.path, trusted=True, device="cpu")
    assert payload.fired()
    payload.reset()


def _exports(model, x):
    out = {}
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(model, (x,)), buffer)
    out["pt2"] = buffer.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, convert in (("trace", lambda: torch.jit.trace(model, x)),
                              ("script", lambda: torch.jit.script(model))):
            buffer = io.BytesIO()
            torch.jit.save(convert(), buffer)
            out[kind] = buffer.getvalue()
    return out


@pytest.mark.parametrize("arch,kwargs", [
    ("DeepTaylorCNN", dict(in_channels=1, n_outputs=2, channels=(4, 8))),
    ("PreActResNet3d", dict(widths=(4, 8), units=(1, 1))),
    ("UNet3d", dict(in_channels=1, n_classes=2, features=(4, 8)))])
def test_plain_exports_of_the_reference_nets_load_untrusted(arch, kwargs, tmp_path):
    from NeuroRelevanceLib.models import open_model
    from NeuroRelevanceLib.nets import build

    net = build(arch, seed=1, **kwargs)
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x)
    for kind, data in _exports(net, x).items():
        path = tmp_path / f"{arch}.{'PT2' if kind == 'pt2' else 'Ts'}"  # any case of suffix
        path.write_bytes(data)
        loaded = load_model(path, device="cpu")
        assert loaded.format == ("exported" if kind == "pt2" else "torchscript")
        with torch.no_grad():
            assert torch.allclose(loaded.model(x), expected, atol=1e-5), (arch, kind)
        assert isinstance(open_model(path), (torch.export.ExportedProgram, torch.jit.ScriptModule))


def test_dynamic_shape_export_loads_untrusted(tmp_path):
    net = tiny_net()
    x = torch.randn(2, 1, 8, 8, 8)
    dims = {0: torch.export.Dim("batch", min=1, max=8), 2: torch.export.Dim("depth", min=4, max=32)}
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=(dims,)), tmp_path / "dyn.pt2")
    loaded = load_model(tmp_path / "dyn.pt2", device="cpu")
    y = torch.randn(3, 1, 12, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.model(y), net(y), atol=1e-6)


def test_an_exported_program_named_pt_is_read_as_what_it_is(tmp_path):
    net = tiny_net()
    torch.export.save(torch.export.export(net, (example(),)), tmp_path / "net.pt")
    loaded = load_model(tmp_path / "net.pt", device="cpu")
    assert loaded.format == "exported"


@pytest.mark.parametrize("text,ok", [
    ("Symbol('s0', positive=True, integer=True)", True), ("Mul(Integer(2), Symbol('s1'))", True),
    ("s0 + 2*s1 - 1", True), ("Max(1, s0) <= 64", True), ("exec('x')", False), ("open('f')", False),
    ("Symbol('s0').__class__", False), ("__import__('os')", False), ("Symbol('a\"b')", False),
    ("(lambda: 1)()", False), ("Symbol('s0', evaluate=exec)", False), ("s0\r+1", False)])
def test_size_expressions_torch_would_sympify(text, ok):
    from NeuroRelevanceLib.models.expressions import symbolic_expression_ok

    assert symbolic_expression_ok(text) is ok


@pytest.mark.parametrize("text,ok", [
    ("L['x'].size()[0] <= 64", True), ("L['x'].size()[2] == 8 and L['x'].size()[3] >= 4", True),
    ("L['x'].stride()[1] == 512", True), ("__import__('os').system('x')", False),
    ("L.__class__", False), ("L['x'].size.__self__", False), ("L[\"a'\"].size()[0] == 1", False),
    ("exec('x') is None", False), ("L['x'].size()[0] <= (1).__class__", False), ("L['x'].size(1) == 2", False)])
def test_guard_code_torch_would_exec(text, ok):
    from NeuroRelevanceLib.models.expressions import guard_ok

    assert guard_ok(text) is ok
