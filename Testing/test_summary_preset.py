"""A summary run's LRP part uses the run's preset (given, or the card's recommended one) — the one
its record and node name state — not the library function's default."""
import torch

from NeuroRelevanceLib.explanation.dispatch import explain
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import scan_volume, tiny_card


def _direct(run, preset):
    job = run.job
    x = torch.from_numpy(job.prepared.array[None])
    return explain(job.loaded.model, x, method="summary", preset=preset, target=job.class_index,
                   device="cpu").relevance


def test_summary_uses_the_given_preset(scene, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, method="summary", preset="alpha2-beta1")
    assert run.record["preset"] == "alpha2-beta1"
    used = run.job.explanation.relevance
    assert torch.allclose(used, _direct(run, "alpha2-beta1"))
    assert not torch.allclose(used, _direct(run, "epsilon-plus"))


def test_summary_uses_the_cards_recommended_preset(scene, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path, preset="alpha2-beta1"), device="cpu")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, method="summary")
    assert run.record["preset"] == "alpha2-beta1"
    assert torch.allclose(run.job.explanation.relevance, _direct(run, "alpha2-beta1"))


def test_a_summary_without_lrp_records_no_preset(scene, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, method="summary",
                                    methods=["gradient", "guided_backprop"])
    assert run.record["preset"] is None
