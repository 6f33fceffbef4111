"""``neurorelevance demo --model NAME`` explains another bundled network, each on the subject it is made for.

``run_demo(card=brain_age_resnet.json, diagnosis="control", age=80)`` worked from Python, but the command line
could only run the AD network. The README documents the one-liner; it parses as written.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from NeuroRelevanceLib.cli import build_parser, main
from NeuroRelevanceLib.pretrained import DEMO_SUBJECTS, MODELS, model_card_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_brain_age_demo_runs_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("slicer")
    out = tmp_path / "out"
    assert main(["demo", "--model", "brain_age_resnet", "--output", str(out), "--spacing", "4"]) == 0
    printed = capsys.readouterr().out
    assert "brain_age_resnet.json" in printed, printed
    assert "control subject no network saw (index 9001, not part of any cohort), age 80" in printed, printed
    assert "labels 2, 3" in printed and "nothing to score against" not in printed, printed
    record = json.loads((out / "heatmap.json").read_text())["record"]
    card = json.loads(model_card_path("brain_age_resnet").read_text())
    assert record["model"]["name"] == card["name"] and record["model"]["card"].endswith("brain_age_resnet.json")
    assert re.search(r"prediction: \d+\.\d+ years", printed), printed


def test_every_offered_model_is_a_t1_model_with_a_subject_the_generator_makes():
    from NeuroRelevanceLib.demo.atrophy import DIAGNOSES, AtrophyParams
    from NeuroRelevanceLib.demo_run import DEMO_MODEL
    from NeuroRelevanceLib.models import read_card

    assert DEMO_MODEL in DEMO_SUBJECTS and set(DEMO_SUBJECTS) < set(MODELS)
    low, high = AtrophyParams().age_range
    for name, subject in DEMO_SUBJECTS.items():
        card = read_card(model_card_path(name))
        assert list(card.input.channels) == ["T1"], name
        assert subject.diagnosis in DIAGNOSES and low <= subject.age <= high, name
    parser = build_parser(["demo"])
    assert parser.parse_args(["demo"]).model == DEMO_MODEL


def test_a_model_the_demo_cannot_explain_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", "--model", "lesion_unet", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ad_cnn" in err and "brain_age_resnet" in err, err
    assert not out.exists()


def test_the_readme_documents_the_brain_age_one_liner():
    text = (ROOT / "README.md").read_text()
    section = text.split("## What the demo does", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in re.findall(r"`([^`]*run\.py demo[^`]*)`", section) if "--model" in line]
    assert any("brain_age_resnet" in line for line in lines), section
    for line in lines:
        argv = shlex.split(line.split("run.py", 1)[1])
        assert build_parser(argv).parse_args(argv).model in DEMO_SUBJECTS
