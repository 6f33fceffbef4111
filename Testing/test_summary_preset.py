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


def test_a_summarys_lrp_part_gets_the_same_zb_box_as_an_lrp_run(scene, one_torch_thread):
    """The brain-age card's epsilon-gamma-box needs the per-voxel box (0 outside the brain): a summary of LRP
    alone must equal the LRP run's map normalised, with no relevance where the input is masked to 0."""
    from NeuroRelevanceLib import mrml
    from NeuroRelevanceLib.demo.cohort import synthesize_subject
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    card = model_card_path("brain_age_resnet")
    loaded = load_model(card, device="cpu")
    s = synthesize_subject(128, 80.0, "control", **generator_options(card))
    volume = mrml.array_to_volume(scene, s.image, s.grid, "subject")
    run = RelevanceLogic(scene).run([volume], loaded)
    lrp = run.job.explanation.relevance
    summary = RelevanceLogic(scene).run([volume], loaded, method="summary", methods=["lrp"],
                                        normalisation="max-abs").job.explanation.relevance
    outside = torch.from_numpy(~run.job.prepared.support[None])   # where the scan has no data
    assert outside.any() and float(lrp[outside].abs().sum()) == 0.0
    assert float(summary[outside].abs().sum()) == 0.0
    assert torch.allclose(summary.double(), (lrp / lrp.abs().max()).double(), atol=1e-5)
