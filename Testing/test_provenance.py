"""One settings record per run: built in one place, on the nodes, and able to say when it is stale."""
import hashlib
import json

import numpy as np
import pytest

from NeuroRelevanceLib import __version__, mrml, panel
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import SCAN_GRID, scan_volume, tiny_card


@pytest.fixture
def card(tmp_path):
    return tiny_card(tmp_path)


@pytest.fixture
def loaded(card):
    return load_model(card, device="cpu")


def _settings(**changes):
    values = dict(method="lrp", preset="alpha1-beta0", target="AD", filter_type="none", filter_low=0.0,
                  filter_high=1.0, filter_placement="input", opacity=0.5, threshold=0.0,
                  positive_only=False, atlas=None, epsilon=1e-6, gamma=0.25, alpha=1.0)
    values.update(changes)
    return panel.run_settings(**values)


def test_custom_alpha_is_named_and_recorded_as_the_rule_that_ran(scene, loaded, one_torch_thread):
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, **_settings(alpha=3.0))
    record = run.record
    assert record["preset"] == "alpha1-beta0"
    assert record["rule_parameters"] == {"alpha": 3.0, "beta": 2.0}
    assert record["rules"] and all("AlphaBeta(alpha=3.0, beta=2.0," in rule for rule in record["rules"].values())
    name = run.node.GetName()
    assert "α=3" in name and "β=2" in name and "alpha1-beta0" not in name
    assert json.loads(run.node.GetAttribute("NeuroRelevance.record")) == record
    plain = RelevanceLogic(scene).run([scan_volume(scene, "other")], loaded, **_settings())
    assert plain.record["rule_parameters"] == {"alpha": 1.0, "beta": 0.0}
    assert "LRP alpha1-beta0" in plain.node.GetName()


def test_record_names_model_hash_version_target_filter_atlas_and_grids(scene, loaded, card, one_torch_thread):
    labels = np.zeros(SCAN_GRID.shape_kji, np.int16)
    labels[:, :, :12], labels[:, :, 12:] = 1, 2
    atlas = mrml.array_to_volume(scene, labels, SCAN_GRID, "halves", node_class="vtkMRMLLabelMapVolumeNode")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, **_settings(
        preset="epsilon-plus", filter_type="pass", filter_low=0.2, filter_high=0.9, atlas=atlas))
    r = run.record
    assert r["software"] == f"NeuroRelevance {__version__}"
    weights = card.parent / "tiny.safetensors"
    assert r["model"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert r["model"]["card_sha256"] == hashlib.sha256(card.read_bytes()).hexdigest()
    assert r["model"]["name"] == "tiny" and "not for clinical use" in r["model"]["limitations"]
    assert r["method"] == "lrp" and r["preset"] == "epsilon-plus"
    assert r["rule_parameters"] == {"epsilon": 1e-6}
    assert r["target"] == {"requested": "AD", "index": 1, "label": "AD"}
    assert r["filter"] == {"type": "pass", "range": [0.2, 0.9], "placement": "input"}
    assert r["regions"]["atlas"] == "halves" and r["regions"]["grid"] == "scan"
    assert r["grid"]["scan"]["shape_kji"] == list(SCAN_GRID.shape_kji)
    assert r["grid"]["scan"]["spacing_mm"] == [2.0, 2.0, 2.0]
    assert r["grid"]["model"]["shape_kji"] == [12, 16, 16] and r["grid"]["model"]["spacing_mm"] == [4.0, 4.0, 4.0]
    assert r["inputs"] == [{"channel": "T1", "volume": "scan"}]
    assert r["prediction"] == run.prediction


def test_console_default_preset_is_the_cards_recommended_one(scene, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path, preset="alpha2-beta1"), device="cpu")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded)
    assert run.record["preset"] == "alpha2-beta1" and "LRP alpha2-beta1" in run.node.GetName()
    assert run.job.settings.preset == "alpha2-beta1"


def test_a_run_knows_which_settings_it_matches(scene, loaded, one_torch_thread):
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, **_settings())
    assert run.stale_reasons(_settings()) == []
    # display-only changes are applied from the cache: the result stays current
    assert run.stale_reasons(_settings(opacity=0.9, threshold=0.3, positive_only=True,
                                       filter_type="pass", filter_low=0.3)) == []
    for change, word in [(dict(preset="epsilon-plus"), "preset"), (dict(alpha=3.0), "α"),
                         (dict(target="control"), "target"), (dict(method="gradient"), "method"),
                         (dict(filter_type="pass", filter_placement="every-layer"), "filter"),
                         (dict(atlas="AAL3"), "atlas")]:
        reasons = run.stale_reasons(_settings(**change))
        assert reasons and any(word in reason for reason in reasons), (change, reasons)
    other_model = run.stale_reasons(_settings(), model="/elsewhere/other.json")
    assert other_model and "model" in other_model[0]


def test_caption_names_model_method_target_filter_and_intended_use(scene, loaded, one_torch_thread):
    from NeuroRelevanceLib.provenance import caption_lines

    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, **_settings(alpha=3.0))
    text = "\n".join(caption_lines(run.record))
    for word in ("tiny", "sha256", "α=3", "β=2", "target AD", "filter: none", "not for clinical use",
                 f"NeuroRelevance {__version__}"):
        assert word in text, word


def test_panel_lines_say_what_the_result_is_and_when_it_is_out_of_date(scene, loaded, one_torch_thread):
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, **_settings(alpha=3.0))
    summary = panel.result_summary(run)
    assert summary.splitlines()[1].startswith("LRP αβ (α=3, β=2); target AD; filter: none; model tiny")
    assert panel.stale_text(run, _settings(alpha=3.0)) == ""
    stale = panel.stale_text(run, _settings(alpha=3.0, preset="epsilon-plus"))
    assert stale.startswith("⚠ Out of date") and "preset: run alpha1-beta0, now epsilon-plus" in stale
    failed = panel.results_text(run, _settings(alpha=3.0), event="failed", error="boom")
    assert failed.startswith("Run failed: boom\nThe overlay still shows the earlier run:\nPrediction: ")
    assert "\nLRP αβ (α=3, β=2)" in failed
    assert panel.results_text(None, event="cancelled") == "Cancelled: nothing was changed."
    assert panel.results_text(run, _settings(preset="epsilon-plus", alpha=3.0)).endswith("Apply to update.")
