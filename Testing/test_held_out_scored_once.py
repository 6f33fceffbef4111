"""The fresh held-out cohort is scored once (``pretrained.held_out_log``, ``benchmarks/bench_groundtruth.py``):
the card logs each scoring (``training.held_out_cohort.scored``), the benchmark refuses a second one alone or with
``--write-evidence`` (before any work, the card untouched), a default run skips it and says so, and
``--rescore-held-out "<why>"`` scores it again, logs it and retires the seed. Always on a copy of a card."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from NeuroRelevanceLib.pretrained import model_card_path
from NeuroRelevanceLib.pretrained.heldout import cohort_source

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_groundtruth  # noqa: E402


def _copy(tmp_path: Path, name: str = "ad_cnn") -> Path:
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(model_card_path(name).with_suffix(suffix), tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.json"


def _run(tmp_path: Path, *args: str) -> int:
    return bench_groundtruth.main(["--card", "ad_cnn", "--models-dir", str(tmp_path), "--max-subjects", "1",
                                   "--out", str(tmp_path / "out.json"), *args])


def test_bundled_cards_log_their_one_scoring_from_the_record():
    """Each bundled card logs today's one scoring of its fresh cohort: the seed its evidence.held_out records,
    every method that evidence scores, the script its evidence names, and the commit that first recorded it."""
    for name in ("ad_cnn", "brain_age_resnet", "lesion_unet"):
        raw = json.loads(model_card_path(name).read_text())
        fresh, held = raw["training"]["held_out_cohort"], raw["evidence"]["held_out"]
        (entry,) = fresh["scored"]
        assert entry["cohort_seed"] == fresh["seed"] == held["cohort_seed"]
        assert ["lrp:" + p for p in entry["presets"]] + entry["other_methods"] == sorted(held["methods"],
                                                                                         key=list(held["methods"]).index)
        assert entry["script"] == raw["evidence"]["script"] and entry["date"] == "2026-12-06"
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{entry['commit']}:"
                                f"{model_card_path(name).relative_to(ROOT)}"], capture_output=True, text=True)
        if shown.returncode == 0:     # a clone with that history: the commit records this seed's scores
            recorded = json.loads(shown.stdout)["evidence"]["held_out"]
            assert recorded["cohort_seed"] == entry["cohort_seed"]
            assert recorded["methods"][f"lrp:{raw['recommended_preset']}"]["mass_accuracy"] == pytest.approx(
                held["methods"][f"lrp:{raw['recommended_preset']}"]["mass_accuracy"], abs=1e-4)


@pytest.mark.parametrize("args", [("--split", "held_out"), ("--write-evidence",)])
def test_a_second_scoring_is_refused_before_any_work(tmp_path, capsys, args):
    card = _copy(tmp_path)
    before = card.read_bytes()
    assert _run(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "has been scored already (2026-12-06 at commit c911841" in err and "--rescore-held-out" in err, err
    assert card.read_bytes() == before and not (tmp_path / "out.json").exists()


def test_an_unscored_fresh_cohort_is_not_spent_by_split_held_out(tmp_path, capsys):
    card = _copy(tmp_path)
    raw = json.loads(card.read_text())
    raw["training"]["held_out_cohort"]["seed"] = 7
    card.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    before = card.read_bytes()
    assert _run(tmp_path, "--split", "held_out") == 2
    assert "would spend it" in capsys.readouterr().err
    assert card.read_bytes() == before


def test_rescoring_needs_a_why_and_never_writes_evidence(tmp_path):
    _copy(tmp_path)
    for args in (("--rescore-held-out", " "), ("--rescore-held-out", "x", "--write-evidence"),
                 ("--rescore-held-out", "x", "--split", "test")):
        with pytest.raises(SystemExit):
            _run(tmp_path, *args)


def test_the_flag_scores_it_again_logs_it_and_retires_the_seed(tmp_path, capsys):
    card = _copy(tmp_path)
    before = json.loads(card.read_text())
    assert _run(tmp_path, "--split", "held_out", "--rescore-held-out", "checking a metric change") == 0
    out = capsys.readouterr().out
    after = json.loads(card.read_text())
    fresh = after["training"]["held_out_cohort"]
    assert len(fresh["scored"]) == 2 and fresh["scored"][-1]["why"] == "checking a metric change"
    assert fresh["scored"][-1]["cohort_seed"] == 2 and "graph-deep-taylor" in fresh["scored"][-1]["presets"]
    assert fresh["retired"][-1]["seed"] == 2 and "checking a metric change" in fresh["retired"][-1]["why"]
    assert "Pick a new seed" in out and "e.g. 3" in out, out
    assert after["evidence"] == before["evidence"]     # the recorded figures stay as they are
    with pytest.raises(ValueError, match="was retired"):
        cohort_source(card, "held_out")


def test_a_default_run_skips_the_fresh_cohort_and_says_so(tmp_path, capsys):
    card = _copy(tmp_path)
    before = card.read_bytes()
    assert _run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "skipped the fresh held-out cohort" in out and "scored on 2026-12-06 (commit c911841)" in out, out
    assert "retired cohort" in out and "Chosen on the development subjects" in out
    assert card.read_bytes() == before
    summary = json.loads((tmp_path / "out.json").read_text())["ad_cnn"]
    assert "held_out" not in summary and {"development", "retired_held_out"} <= set(summary)


def test_rewrite_reasons_rebuilds_the_reason_from_the_record_and_scores_nothing(tmp_path):
    card = _copy(tmp_path)
    raw = json.loads(card.read_text())
    original = raw["recommendation_reason"]
    raw["recommendation_reason"] = "an older wording"
    card.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    assert _run(tmp_path, "--rewrite-reasons") == 0
    after = json.loads(card.read_text())
    assert after["recommendation_reason"] == original and {**after, "recommendation_reason": "x"} == \
        {**raw, "recommendation_reason": "x"}
