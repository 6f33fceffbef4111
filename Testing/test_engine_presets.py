"""One preset registry (engine/presets.py) that every front end reads: no hand-kept copy of the preset list
anywhere in the product, the registry imports no torch, and a registered preset is usable at once."""
from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.engine import explain, presets
from NeuroRelevanceLib.engine.presets import Preset, register_preset

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "NeuroRelevance"


def _literals_naming_presets(path: Path, names: set) -> list[int]:
    """Lines of list/tuple/set/dict literals in ``path`` that spell out two or more preset names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            spelled = {e.value for e in items if isinstance(e, ast.Constant) and e.value in names}
            if len(spelled) >= 2:
                found.append(node.lineno)
    return found


def test_no_hand_kept_preset_list_outside_the_registry():
    names = set(presets.PRESETS)
    offenders = {}
    for path in [*(MODULE / "NeuroRelevanceLib").rglob("*.py"), MODULE / "NeuroRelevance.py"]:
        if path == MODULE / "NeuroRelevanceLib" / "engine" / "presets.py":
            continue
        lines = _literals_naming_presets(path, names)
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert not offenders, f"preset lists kept by hand (read engine.presets instead): {offenders}"


def test_the_check_would_catch_a_copied_list(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text('CHOICES = ["epsilon-plus", "alpha1-beta0"]\nALPHA = {"alpha2-beta1": 2.0, "alpha1-beta0": 1.0}\n')
    assert _literals_naming_presets(copy, set(presets.PRESETS)) == [1, 2]


def test_front_ends_read_the_registry():
    from NeuroRelevanceLib import panel, provenance
    from NeuroRelevanceLib.models import schema

    assert list(presets.PRESETS) == panel.PRESETS and tuple(schema.PRESETS) == presets.PRESETS
    assert panel.PRESET_ALPHA == provenance.PRESET_ALPHA == {"alpha1-beta0": 1.0, "alpha2-beta1": 2.0}
    assert {p.name: p.parameters for p in presets.PRESET_REGISTRY.values()} == provenance.PRESET_PARAMETERS
    # the Slicer combo box is filled by the parameter node from Choice(panel.PRESETS), not from the .ui
    tree = ET.parse(MODULE / "Resources" / "UI" / "NeuroRelevance.ui")
    combo = next(w for w in tree.iter("widget") if w.get("name") == "presetComboBox")
    assert combo.findall("item") == []
    assert "Choice(PRESETS)" in (MODULE / "NeuroRelevance.py").read_text()


def test_registry_imports_no_torch():
    code = ("import sys; import NeuroRelevanceLib.engine.presets as p, NeuroRelevanceLib.panel, "
            "NeuroRelevanceLib.provenance, NeuroRelevanceLib.models.schema; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(len(p.PRESETS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(MODULE), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(presets.PRESETS)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))


def test_a_registered_preset_is_offered_and_used():
    model = _Net().double().eval()
    x = torch.rand(1, 1, 6, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    added = Preset("flat-first", "flat on the input, ε elsewhere", conv="epsilon", dense="epsilon", first="flat")
    register_preset(added)
    try:
        assert "flat-first" in presets.PRESETS and presets.get_preset("flat-first") is added
        e = explain(model, x, preset="flat-first", dtype=torch.float64)
        assert e.rules["conv"].endswith("Flat(stabilizer=1e-06)") and "Epsilon" in e.rules["fc"]
    finally:
        presets.unregister_preset("flat-first")
    with pytest.raises(ValueError, match="Unknown preset 'flat-first'"):
        explain(model, x, preset="flat-first")


@pytest.mark.parametrize("name, conv, dense, first", [
    ("epsilon-plus", "ZPlus", "Epsilon", "ZPlus"), ("epsilon-gamma-box", "Gamma", "Epsilon", "ZBox"),
    ("deep-taylor", "ZPlus", "ZPlus", "WSquare"), ("alpha1-beta0", "AlphaBeta", "AlphaBeta", "AlphaBeta"),
    ("alpha2-beta1", "AlphaBeta", "AlphaBeta", "AlphaBeta")])
def test_each_preset_gives_its_documented_rules(name, conv, dense, first):
    """The table in docs/engine.md, read back from the rules a run reports (first conv on the input)."""
    model = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Conv3d(2, 2, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 2 ** 3, 2)).double().eval()
    x = torch.rand(1, 1, 6, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rules = explain(model, x, preset=name, dtype=torch.float64).rules
    assert rules["0"].split(": ", 1)[1].startswith(first)
    assert rules["2"].split(": ", 1)[1].startswith(conv)
    assert rules["5"].split(": ", 1)[1].startswith(dense)


def test_a_registered_preset_reaches_every_front_end():
    """register_preset: the panel (and the web page, which reads it), provenance, the card schema, batch runs
    and the metrics CLI accept the new preset at once, and refuse it again once it is removed — no front end
    keeps a copy taken at import."""
    import argparse

    from NeuroRelevanceLib import panel, provenance
    from NeuroRelevanceLib.batch.options import BatchOptions
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.metrics import cli as metrics_cli
    from NeuroRelevanceLib.models import card, schema

    def accepted_everywhere(name: str) -> dict:
        parser = argparse.ArgumentParser()
        metrics_cli.register(parser.add_subparsers())
        args = parser.parse_args(["compare", "missing-scan.nii.gz", "--model", "missing.json", "--preset", name])
        try:
            metrics_cli._check_before_work(args)
            cli_ok = True
        except InputError as exc:
            cli_ok = "is not a preset" not in str(exc)
        try:
            BatchOptions(preset=name).checked(type("Card", (), {"recommended_preset": name,
                                                                "output": None})())
            batch_ok = True
        except InputError as exc:
            batch_ok = "Unknown preset" not in str(exc)
        except Exception:  # noqa: BLE001 - past the preset check; the stand-in card lacks the rest
            batch_ok = True
        return {"panel": name in panel.PRESETS, "panel alpha": panel.PRESET_ALPHA.get(name) == 3.0,
                "provenance": provenance.PRESET_PARAMETERS.get(name) == ("alpha", "beta")
                and provenance.effective_alpha(name, None) == 3.0,
                "card schema": not any("recommended_preset" in p for p in
                                       schema.check_card({"recommended_preset": name})),
                "card module": name in card.PRESETS, "batch": batch_ok, "metrics cli": cli_ok}

    name = "alpha3-beta2-test"
    register_preset(Preset(name, "α3β2 everywhere", conv="alpha2beta1", dense="alpha2beta1",
                           parameters=("alpha", "beta"), alpha=3.0))
    try:
        got = accepted_everywhere(name)
        assert all(got.values()), f"front ends that do not offer a registered preset: {got}"
    finally:
        presets.unregister_preset(name)
    assert not any(accepted_everywhere(name).values())


def test_a_preset_can_look_at_the_graph_once_per_run():
    """Preset.prepare sees the whole plan once; choose and note get its answer per layer (the hook the
    graph-aware presets use)."""
    from dataclasses import dataclass

    from NeuroRelevanceLib.engine.rules import Flat

    calls = []

    @dataclass(frozen=True)
    class LastLayerFlat(Preset):
        def prepare(self, plan):
            calls.append(plan)
            return plan.linear()[-1].node

        def choose(self, op, params, context=None):
            return Flat(params.stabilizer) if op.node is context else super().choose(op, params, context)

        def note(self, op, context=None):
            return " (last layer)" if op.node is context else ""

    register_preset(LastLayerFlat("last-flat", "flat on the last layer, ε elsewhere", "epsilon", "epsilon"))
    try:
        e = explain(_Net().double().eval(), torch.rand(1, 1, 6, 6, 6, dtype=torch.float64), preset="last-flat",
                    dtype=torch.float64)
    finally:
        presets.unregister_preset("last-flat")
    assert len(calls) == 1
    assert e.rules["fc"] == "Linear (last layer): Flat(stabilizer=1e-06)" and "Epsilon" in e.rules["conv"]
