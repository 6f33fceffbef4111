"""An inflated map (ε on conv → InstanceNorm → LeakyReLU divides by near-zero un-normalised outputs) is refused by
the engine (``InflatedRelevanceError``, an ``InputError``); every front end follows its error path: the batch marks
that subject "failed" with the engine's message (not "unexpected"), and the Slicer logic raises and leaves the
scene exactly as it was. Real TorchScript card, real scans, real scene."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from batch_helpers import demo_cohort
from NeuroRelevanceLib.engine.validate import InflatedRelevanceError
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _card(folder: Path) -> Path:
    """MONAI's BasicUNet (conv → InstanceNorm → LeakyReLU blocks, default initialisation) as TorchScript; its card
    recommends ε everywhere, which inflates it ~1e7 times."""
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    net = nets.BasicUNet(3, 1, 2, features=(4, 4, 4, 4, 4, 4)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(net), folder / "net.pt")
    card = {"name": "inflating", "weights": "net.pt",
            "input": {"channels": ["T1"], "shape": [32, 16, 16], "spacing": [2.0, 2.0, 2.0],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "segmentation", "classes": ["background", "lesion"]},
            "recommended_preset": "epsilon", "intended_use": "Unit tests.", "limitations": "Random weights."}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_the_batch_marks_the_subject_failed_with_the_engines_message(tmp_path):
    from NeuroRelevanceLib.batch import explain_cohort

    card = _card(tmp_path / "model")
    table = pd.read_csv(demo_cohort(tmp_path / "cohort", 2))
    result = explain_cohort(table, card, tmp_path / "out", atlases=(), png=False, device="cpu", target="lesion")
    rows = result.subjects.set_index("id")
    assert list(rows["status"]) == ["failed", "failed"], rows
    reason = rows["reason"].iloc[0]
    assert "times the size of the explained output" in reason and "epsilon-plus" in reason, reason
    assert "unexpected" not in reason, reason
    assert not list((tmp_path / "out").glob("subjects/*/*.nii.gz"))
    done = explain_cohort(table, card, tmp_path / "out2", atlases=(), png=False, device="cpu", target="lesion",
                          preset="epsilon-plus")   # the fix the message names
    assert list(done.subjects["status"]) == ["done", "done"], done.subjects


def test_the_slicer_logic_raises_and_leaves_the_scene_untouched(scene, views, tmp_path):
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import run_scan
    from scene_census import census

    card = _card(tmp_path / "model")
    scan = run_scan(scene)
    logic = RelevanceLogic(scene, views)
    before = census(scene)
    with pytest.raises(InflatedRelevanceError) as info:
        logic.run([scan], str(card))
    assert isinstance(info.value, InputError) and "epsilon-plus" in str(info.value)
    assert census(scene) == before
    result = logic.run([scan], str(card), preset="epsilon-plus")
    assert result.node is not None
