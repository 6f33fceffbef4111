"""The evidence protocol: a preset chosen on development subjects, measured on a fresh held-out cohort.

The test split of each demo card was used to choose presets, so it is development data now; each card
records a fresh cohort (``training.held_out_cohort``: same generator, another seed) that no choice has
seen. The choice must come from the development scores alone, the fresh cohort must hold other
anatomies, and the ground-truth labels are read from the card's structured ``ground_truth.mask_labels``.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from NeuroRelevanceLib.metrics.groundtruth_report import ground_truth_report
from NeuroRelevanceLib.pretrained import model_card_path
from NeuroRelevanceLib.pretrained.evidence import FOLD, evidence_record
from NeuroRelevanceLib.pretrained.heldout import cohort_source, ground_truth_labels, held_out_indices, held_out_subjects


def _edited(tmp_path, name: str, edit) -> str:
    """A copy of a bundled card and its weights with ``edit(card_dict)`` applied."""
    raw = json.loads(model_card_path(name).read_text())
    edit(raw)
    shutil.copyfile(model_card_path(name).with_name(raw["weights"]), tmp_path / raw["weights"])
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(raw))
    return path


def _report(inside: dict[str, float], n: int = 3):
    """A real ground-truth report on tiny volumes: method ``m`` puts the share ``inside[m]`` of its
    (uniform) positive relevance in the mask, the rest spread over the other brain voxels; the
    conservation errors are a: 0.5, b: 0.03, c: 0."""
    mask = np.zeros((6, 6, 6), bool)
    mask[2:4, 2:4, 2:4] = True
    brain = np.ones_like(mask)
    maps = {m: [np.where(mask, share / mask.sum(), (1 - share) / (~mask).sum())] * n for m, share in inside.items()}
    report = ground_truth_report(maps, [mask] * n, brains=[brain] * n, changes=[mask.astype(float)] * n,
                                 names=[f"sub-{i:04d}" for i in range(n)])
    conservation = {"lrp:a": 0.5, "lrp:b": 0.03, "lrp:c": 0.0}
    extra = {m: {"seconds": 0.1, "min_subject_fold": share / mask.mean(), "conservation_error": conservation[m]}
             for m, share in inside.items()}
    return report, extra


def test_the_held_out_scores_cannot_change_the_chosen_preset(tmp_path):
    """chance = 8/216 = 0.037: on development b (0.31, conservation 0.03) is the rule's choice; on the fresh
    cohort a is far better and b falls below the bar, yet b stays the choice and the reason says so."""
    card = _edited(tmp_path, "ad_cnn", lambda raw: None)
    fresh_seed = cohort_source(card, "held_out")["seed"]
    development = _report({"lrp:a": 0.40, "lrp:b": 0.31, "lrp:c": 0.10})
    chosen = set()
    for held in ({"lrp:a": 0.40, "lrp:b": 0.31, "lrp:c": 0.10}, {"lrp:a": 0.95, "lrp:b": 0.05, "lrp:c": 0.90}):
        preset, reason, evidence = evidence_record("ad_cnn", card, development, _report(held))
        chosen.add(preset)
        held_fold = held["lrp:b"] / round(8 / 216, 4)     # the card records 4 decimals
        assert reason.startswith(f"b: on 3 fresh held-out subjects (cohort seed {fresh_seed}")
        assert f"({held_fold:.2f}× chance 0.037" in reason
        assert ("below the 5× bar" in reason) == (held_fold < FOLD)
        assert "chosen on 3 development subjects" in reason and f"({0.31 / 0.037:.2f}× chance 0.037" in reason
        assert evidence["held_out"]["methods"]["lrp:a"]["mass_accuracy"] == pytest.approx(held["lrp:a"], abs=1e-4)
        assert evidence["development"]["methods"]["lrp:a"]["mass_accuracy"] == pytest.approx(0.40, abs=1e-4)
        assert evidence["held_out"]["cohort_seed"] == fresh_seed and evidence["development"]["cohort_seed"] == 0
        assert evidence["held_out"]["subjects"] == [0, 1, 2] and evidence["mask_labels"] == [1]
    assert chosen == {"b"}


def test_the_fresh_cohort_holds_other_anatomies():
    """Same index, other seed: another brain (shape and scan) than the training subject with that index;
    the fresh cohort's indices stop at its size."""
    path = model_card_path("ad_cnn")
    assert cohort_source(path, "held_out")["seed"] != cohort_source(path, "train")["seed"]
    old = next(held_out_subjects(path, split="train", indices=[0]))
    fresh = next(held_out_subjects(path, split="held_out", indices=[0]))
    assert fresh.cohort_seed == cohort_source(path, "held_out")["seed"] != 0 == old.cohort_seed
    assert old.subject_id == fresh.subject_id
    brains = [s.x[0] > 0 for s in (old, fresh)]                # skull-stripped: the brain is the non-zero input
    overlap = (brains[0] & brains[1]).sum() / max(b.sum() for b in brains)
    assert overlap < 0.98, overlap                              # another shape
    assert np.abs(old.x - fresh.x).mean() > 0.02               # another scan
    with pytest.raises(ValueError, match="outside the 64 subjects"):
        next(held_out_subjects(path, split="held_out", indices=held_out_indices(path, "test")))


def test_a_held_out_cohort_with_the_training_seed_is_refused(tmp_path):
    def same_seed(raw):
        raw["training"]["held_out_cohort"]["seed"] = raw["training"]["cohort"]["seed"]

    with pytest.raises(ValueError, match="training cohort's seed"):
        held_out_indices(_edited(tmp_path, "ad_cnn", same_seed), "held_out")


@pytest.mark.parametrize("name", ("ad_cnn", "brain_age_resnet", "lesion_unet"))
def test_a_retired_held_out_seed_is_refused(tmp_path, name):
    """A cohort that choices have seen is retired (training.held_out_cohort.retired): setting it back as the fresh
    cohort is refused with the reason it was retired; it can still be scored, by name, for disclosure."""
    raw = json.loads(model_card_path(name).read_text())
    retired = raw["training"]["held_out_cohort"]["retired"]
    assert retired and all(r["why"] and r["seed"] != raw["training"]["held_out_cohort"]["seed"] for r in retired)

    def back(raw):
        raw["training"]["held_out_cohort"]["seed"] = retired[-1]["seed"]

    path = _edited(tmp_path, name, back)
    with pytest.raises(ValueError, match=f"seed {retired[-1]['seed']} was retired") as error:
        held_out_indices(path, "held_out")
    assert retired[-1]["why"] in str(error.value)
    source = cohort_source(model_card_path(name), "retired")
    assert source["seed"] == retired[-1]["seed"]
    assert source["n_subjects"] == raw["training"]["held_out_cohort"]["n_subjects"]
    first = next(held_out_subjects(model_card_path(name), split="retired", indices=[0]))
    assert first.cohort_seed == retired[-1]["seed"]


def test_a_card_without_a_retired_cohort_has_none_to_score(tmp_path):
    def none(raw):
        raw["training"]["held_out_cohort"].pop("retired", None)

    with pytest.raises(ValueError, match="retires no held-out cohort"):
        cohort_source(_edited(tmp_path, "ad_cnn", none), "retired")


def test_split_sizes_of_the_bundled_cards():
    for name, n_fresh, n_dev in (("ad_cnn", 64, 56), ("brain_age_resnet", 64, 56), ("lesion_unet", 24, 21)):
        path = model_card_path(name)
        assert held_out_indices(path, "held_out") == list(range(n_fresh))
        development = held_out_indices(path, "development")
        assert development == held_out_indices(path, "val") + held_out_indices(path, "test")
        assert len(development) == n_dev


def test_held_out_subjects_on_the_fresh_cohort_select_by_diagnosis_and_age(tmp_path):
    """A smaller fresh cohort (8 subjects): the selection follows each subject's own diagnosis and age."""
    from NeuroRelevanceLib.demo.cohort import cohort_table

    def small(raw):
        raw["training"]["held_out_cohort"]["n_subjects"] = 8

    path = _edited(tmp_path, "brain_age_resnet", small)
    seed = cohort_source(path, "held_out")["seed"]
    table = cohort_table(8, seed=seed)
    old = table[(table.diagnosis == "control") & (table.age >= 50)]
    subjects = list(held_out_subjects(path, split="held_out", diagnosis="control", min_age=50))
    assert [s.index for s in subjects] == list(old.index) and subjects
    assert all(s.diagnosis == "control" and s.age >= 50 and s.cohort_seed == seed for s in subjects)


def test_the_lesion_fresh_cohort_yields_every_subject(tmp_path):
    def small(raw):
        raw["training"]["held_out_cohort"]["n_subjects"] = 5

    path = _edited(tmp_path, "lesion_unet", small)
    subjects = list(held_out_subjects(path, split="held_out"))
    assert [s.index for s in subjects] == list(range(5))
    assert {s.cohort_seed for s in subjects} == {cohort_source(path, "held_out")["seed"]}
    assert all((s.labels > 0).any() for s in subjects)


def test_ground_truth_labels_come_from_the_structured_list(tmp_path):
    """The list decides, not the words: a card whose mask text says label 1 but lists [3] scores label 3."""
    from NeuroRelevanceLib.demo_run import truth_labels

    assert [ground_truth_labels(model_card_path(n)) for n in ("ad_cnn", "brain_age_resnet", "lesion_unet")] \
        == [(1,), (2, 3), (1, 2)]

    def three(raw):
        raw["ground_truth"]["mask_labels"] = [3]

    path = _edited(tmp_path, "ad_cnn", three)
    assert ground_truth_labels(path) == (3,) and truth_labels(path) == (3,)


def test_the_evidence_scores_the_labels_the_card_lists(tmp_path):
    """score_card's chance is the listed labels' share of the brain (oracle: the regenerated subject's labels)."""
    from NeuroRelevanceLib.pretrained.evidence import score_card

    subject = next(held_out_subjects(model_card_path("lesion_unet"), split="held_out", truth="all"))

    def core(raw):
        raw["ground_truth"]["mask_labels"] = [1]     # the core only, while the words still say "lesion > 0"

    report, _ = score_card("lesion_unet", _edited(tmp_path, "lesion_unet", core), split="held_out", max_subjects=1,
                           presets=("epsilon",), other_methods=False, log=None)
    share = (subject.labels == 1)[subject.brain].mean()
    assert share < (subject.labels > 0)[subject.brain].mean()
    assert report.table.loc["chance", "mass_accuracy"] == pytest.approx(share, rel=1e-6)


@pytest.mark.parametrize("drop, match", [("held_out_cohort", "no fresh held-out cohort"),
                                         ("mask_labels", "does not list its ground-truth labels")])
def test_older_cards_get_one_clear_message(tmp_path, drop, match):
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.panel import recommendation_text
    from NeuroRelevanceLib.pretrained.evidence import score_card

    def old(raw):
        (raw["training"] if drop == "held_out_cohort" else raw["ground_truth"]).pop(drop)

    path = _edited(tmp_path, "ad_cnn", old)
    with pytest.raises(ValueError, match=match):
        score_card("ad_cnn", path, split="held_out", log=None)
    if drop == "mask_labels":
        from NeuroRelevanceLib.demo_run import truth_labels

        with pytest.raises(InputError, match="atrophy == 1"):   # names what the card says in words
            truth_labels(path)
    else:
        assert held_out_indices(path, "test") == list(range(128, 160))    # the older splits still read
    assert recommendation_text(read_card(path)).startswith("Recommended preset ")   # the card still reads


def test_a_newly_made_card_never_takes_a_retired_seed_as_its_fresh_cohort():
    from NeuroRelevanceLib.pretrained.cards import held_out_cohort

    for base in (0, 5):
        entry = held_out_cohort("ad_cnn", base)
        retired = {r["seed"] for r in entry["retired"]}
        assert entry["seed"] != base and entry["seed"] not in retired and retired and base not in retired


def test_the_retired_cohort_is_disclosed_beside_the_fresh_one_and_changes_nothing(tmp_path):
    """The retired cohort's figure (scored after the choice) is recorded in evidence.retired_held_out and stated
    in the reason after the fresh figure; neither it nor the fresh figure can change the preset."""
    card = _edited(tmp_path, "ad_cnn", lambda raw: None)
    retired_seed = cohort_source(card, "retired")["seed"]
    development = _report({"lrp:a": 0.40, "lrp:b": 0.31, "lrp:c": 0.10})
    fresh = _report({"lrp:a": 0.40, "lrp:b": 0.20, "lrp:c": 0.10})
    for retired in ({"lrp:b": 0.05}, {"lrp:b": 0.60}):
        preset, reason, evidence = evidence_record("ad_cnn", card, development, fresh, retired=_report(retired))
        assert preset == "b"
        entry = evidence["retired_held_out"]
        assert entry["cohort_seed"] == retired_seed != evidence["held_out"]["cohort_seed"]
        assert entry["methods"]["lrp:b"]["mass_accuracy"] == pytest.approx(retired["lrp:b"], abs=1e-4)
        assert "retired" in entry["split"] and entry["why_retired"]
        fold = retired["lrp:b"] / round(8 / 216, 4)
        assert reason.index("fresh held-out") < reason.index(f"retired cohort seed {retired_seed}")
        assert f"({fold:.2f}× chance 0.037" in reason
    _, reason, evidence = evidence_record("ad_cnn", card, development, fresh)
    assert "retired_held_out" not in evidence and "retired" not in reason
