"""The demo scores a card against the card's own ground-truth labels (``ground_truth.mask_labels``).

``run_demo(card=brain_age_resnet.json, diagnosis="control")`` used to say "no AD-like atrophy, nothing to
score against" although the subject's atrophy mask has the age labels 2 and 3 the card names.
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.demo_run import run_demo
from NeuroRelevanceLib.pretrained import model_card_path

pytest.importorskip("slicer")


def test_the_labels_are_read_from_each_bundled_card():
    from NeuroRelevanceLib.demo_run import truth_labels

    assert truth_labels(model_card_path("ad_cnn")) == (1,)
    assert truth_labels(model_card_path("brain_age_resnet")) == (2, 3)
    assert truth_labels(model_card_path("lesion_unet")) == (1, 2)   # core and penumbra (ground_truth.mask_labels)


def test_a_brain_age_demo_on_a_control_is_scored_against_the_age_labels(tmp_path, one_torch_thread):
    lines: list[str] = []
    report = run_demo(tmp_path / "out", card=model_card_path("brain_age_resnet"), diagnosis="control", age=80.0,
                      spacing=4.0, log=lines.append)
    text = "\n".join(lines)
    assert "nothing to score against" not in text and "labels 2, 3" in text, text
    # independent oracle for chance: the age labels' share of the subject's brain, regenerated here
    from NeuroRelevanceLib.demo import synthesize_subject
    from NeuroRelevanceLib.demo_run import DEMO_SUBJECT_INDEX
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    options = {**generator_options(model_card_path("brain_age_resnet")), "spacing": 4.0}
    subject = synthesize_subject(DEMO_SUBJECT_INDEX, 80.0, "control", **options)
    share = float(np.isin(subject.atrophy, (2, 3))[subject.brain].mean())
    mask = np.asarray(nib.load(report.files["atrophy_mask"]).dataobj)
    assert {2, 3} <= set(np.unique(mask).tolist()) and share > 0
    assert report.chance["mass_accuracy"] == pytest.approx(share, rel=1e-6)
    assert report.ceiling["mass_accuracy"] > 2 * share
    assert np.isfinite(report.mass_accuracy) and report.mass_accuracy > share
