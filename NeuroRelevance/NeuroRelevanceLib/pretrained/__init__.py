"""Trained demo networks that ship with NeuroRelevance, each a JSON model card + safetensors weights.

- ``ad_cnn``            AD-like vs control classifier (DeepTaylorCNN, after Taylor's brain-age CNN)
- ``brain_age_resnet``  brain-age regressor in years (PreActResNet3d, as in the tensor-decomposition brain-age paper)
- ``lesion_unet``       lesion segmenter from four perfusion/diffusion channels (UNet3d, as in Tjoa et al.)

All three were trained on the synthetic cohorts of :mod:`NeuroRelevanceLib.demo` by
``scripts/train_demo_models.py`` (see docs/pretrained.md). Load one with
``NeuroRelevanceLib.models.load_model(model_card_path("ad_cnn"))``: the weights are read as a
state dict, no code is unpickled. The training code (``training``, ``loops``, ``cards``, ``data``)
is imported only when used.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

_HERE = Path(__file__).resolve().parent
MODELS = ("ad_cnn", "brain_age_resnet", "lesion_unet")


class DemoSubject(NamedTuple):
    """The generated subject ``neurorelevance demo --model NAME`` explains with a network: no network saw it
    (``demo_run.DEMO_SUBJECT_INDEX``, not part of any cohort; not the card's held-out cohort)."""

    diagnosis: str
    age: float
    help: str


#: the networks the demo offers (``demo_run.run_demo`` makes T1 subjects of the atrophy cohort; ``lesion_unet``
#: takes four perfusion/diffusion channels of another cohort, so it is not offered), each with its subject
DEMO_SUBJECTS = {
    "ad_cnn": DemoSubject("AD", 78.0, "the AD-vs-control classifier on an AD-like subject aged 78"),
    "brain_age_resnet": DemoSubject("control", 80.0, "the brain-age regressor on a control aged 80 (scored "
                                                     "against the age-related atrophy, labels 2 and 3)"),
}


def available_models() -> list[str]:
    """Names of the demo models whose card and weights are both present in this package."""
    return [n for n in MODELS if (_HERE / f"{n}.json").is_file() and (_HERE / f"{n}.safetensors").is_file()]


def model_card_path(name: str) -> Path:
    """Path of demo model ``name``'s JSON card (pass it to ``models.load_model``)."""
    if name not in MODELS:
        raise ValueError(f"unknown demo model {name!r}; choose one of {list(MODELS)}")
    path = _HERE / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"the card of demo model {name!r} is missing ({path}); rebuild it "
                                f"with scripts/train_demo_models.py or reinstall NeuroRelevance")
    return path


__all__ = ["DEMO_SUBJECTS", "MODELS", "available_models", "model_card_path"]
