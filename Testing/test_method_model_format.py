"""Trial 7, F5: a method the model's format cannot run is refused before any subject runs, with a fix that works.

Grad-CAM, Grad-CAM++, Guided Grad-CAM and a summary (whose default methods include Grad-CAM++) read a layer's
output through module hooks, which a TorchScript model or an exported program (.pt2) does not run. Before, every
subject failed at run time with "load the model from its card (architecture + weights)", a route the command line
refuses for a class outside NeuroRelevanceLib.nets. Now the run is refused at once (exit 2, nothing written), and
both routes the message offers are followed here end to end: a card naming a NeuroRelevanceLib.nets architecture
on the command line, and a card naming a user's own class (importable from a file) through
batch.explain_cohort(..., trusted=True).
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CAM = ["gradcam", "gradcam++", "guided_gradcam", "summary"]


@pytest.fixture(scope="module")
def cards(tmp_path_factory, batch_inputs):
    """The batch tests' tiny card, and the same network as TorchScript and as an exported program."""
    from NeuroRelevanceLib.models import load_model

    card, table = batch_inputs
    folder = tmp_path_factory.mktemp("formats")
    data = json.loads(Path(card).read_text())
    net = load_model(card, device="cpu").model
    x = torch.rand(1, 1, *data["input"]["shape"])
    out = {"module": Path(card)}
    for kind, save in (("torchscript", lambda p: torch.jit.save(torch.jit.script(net), str(p))),
                       ("exported", lambda p: torch.export.save(torch.export.export(net, (x,)), str(p)))):
        weights = folder / f"{kind}.{'pt2' if kind == 'exported' else 'pt'}"
        save(weights)
        foreign = {k: v for k, v in data.items() if k != "architecture"}
        foreign["weights"] = weights.name
        (folder / f"{kind}.json").write_text(json.dumps(foreign))
        out[kind] = folder / f"{kind}.json"
    return out, str(next(Path(table).parent.rglob("*.nii.gz")))


def _run(tmp_path, card, scan, method, name="out") -> tuple[int, Path]:
    out = tmp_path / name
    code = main(["explain", scan, "--model", str(card), "--output", str(out), "--method", method,
                 "--atlas", "none", "--no-png", "--quiet"])
    return code, out


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
@pytest.mark.parametrize("method", CAM)
def test_the_command_line_refuses_before_any_subject(tmp_path, capsys, cards, fmt, method):
    paths, scan = cards
    code, out = _run(tmp_path, paths[fmt], scan, method)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "failed" not in err and "subjects" not in err, err           # no subject ran
    assert len(err.strip().splitlines()) == 1, err
    assert "--method" in err and "module hooks" in err, err
    assert "NeuroRelevanceLib.nets" in err and "trusted=True" in err, err    # both routes named
    assert "gradient" in err and "guided_backprop" in err, err               # and what runs on this file
    assert not out.exists()


def test_the_command_line_route_works_for_a_nets_architecture(tmp_path, capsys, cards):
    paths, scan = cards
    for method in CAM:
        code, out = _run(tmp_path, paths["module"], scan, method, name=f"out-{method}")
        assert code == 0, (method, capsys.readouterr().err)


def test_the_python_route_works_for_a_class_importable_from_a_file(tmp_path, capsys, cards, monkeypatch):
    """A user's own class in a .py file on the path, named by a card with state-dict weights: the command line
    refuses it (it never runs code from a model file); batch.explain_cohort(..., trusted=True) explains it."""
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.models import save_weights

    paths, scan = cards
    (tmp_path / "my_f5_net.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class MyNet(nn.Module):
            def __init__(self, channels=3):
                super().__init__()
                self.features = nn.Sequential(nn.Conv3d(1, channels, 3, padding=1), nn.ReLU(),
                                              nn.Conv3d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
                self.head = nn.Linear(channels, 2)

            def forward(self, x):
                return self.head(self.features(x).mean((2, 3, 4)))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_f5_net

    torch.manual_seed(0)
    save_weights(my_f5_net.MyNet(), tmp_path / "my.safetensors")
    data = json.loads(Path(paths["module"]).read_text())
    data.update(architecture={"class": "my_f5_net.MyNet", "kwargs": {"channels": 3}}, weights="my.safetensors")
    card = tmp_path / "my.json"
    card.write_text(json.dumps(data))
    code, out = _run(tmp_path, card, scan, "gradcam")
    assert code == 2 and "trusted=True" in capsys.readouterr().err
    result = explain_cohort([scan], card, tmp_path / "trusted", method="gradcam", atlases=(), png=False,
                            trusted=True)
    assert result.summary["counts"]["done"] == 1, result.summary


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "guided_gradcam"])
def test_the_library_names_methods_that_run_and_the_module_route(method):
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 4 ** 3, 2)).eval()
    with pytest.raises(InputError) as info:
        explain(torch.jit.script(net), torch.rand(1, 1, 6, 6, 6), method)
    message = str(info.value)
    assert "TorchScript" in message and "guided_backprop" in message and "trusted=True" in message, message
