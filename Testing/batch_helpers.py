"""Small real inputs for the batch tests: a tiny template-space model card and a demo cohort at 8 mm."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: the demo generator's grid at 8 mm: 21 × 26 × 22 voxels (i, j, k), voxel 0 at RAS (-80, -117, -78)
SPACING = 8.0
ORIGIN = [-80.0, -117.0, -78.0]
ATLAS = "DesikanKilliany"
#: synthetic scans keep the scalp, where relevance also lands: accept a partial atlas overlap
MIN_OVERLAP = 0.2


def tiny_card(folder: Path, channels=("T1",), name: str = "tiny-batch") -> Path:
    """A two-class DeepTaylorCNN (random weights) on the demo's 8 mm template grid, with its card."""
    from NeuroRelevanceLib.models import save_weights
    from NeuroRelevanceLib.nets import build, spec

    folder.mkdir(parents=True, exist_ok=True)
    net = build("DeepTaylorCNN", seed=5, in_channels=len(channels), n_outputs=2, channels=(2, 4), bias=False,
                batchnorm=False)
    save_weights(net, folder / f"{name}.safetensors")
    card = {"name": name, "architecture": spec(net), "weights": f"{name}.safetensors",
            "input": {"channels": list(channels), "shape": [22, 26, 21], "spacing": [SPACING] * 3,
                      "orientation": "RAS", "origin": ORIGIN,
                      "normalization": {"type": "percentile", "low": 1.0, "high": 99.0, "mask": "nonzero"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "recommended_preset": "epsilon-plus",
            "intended_use": "Unit tests of NeuroRelevance's batch explanation on synthetic data.",
            "limitations": "Random weights; not for clinical use."}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


def demo_cohort(folder: Path, n_subjects: int = 6) -> Path:
    """A synthetic cohort at 8 mm (half AD-like) and a table ``cohort.csv`` with id, path, group, age."""
    import pandas as pd

    from NeuroRelevanceLib.demo import generate_cohort

    manifest = generate_cohort(folder, n_subjects, spacing=SPACING, seed=0)
    table = pd.DataFrame({"id": manifest["subject_id"], "path": [str(folder / p) for p in manifest["image"]],
                          "group": manifest["diagnosis"], "age": manifest["age"]})
    table.to_csv(folder / "cohort.csv", index=False)
    return folder / "cohort.csv"


def read_map(path) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI map as (float64 array in nibabel order, affine)."""
    import nibabel as nib

    image = nib.load(str(path))
    return np.asarray(image.get_fdata(dtype=np.float64)), image.affine


def single_scan_map(card: Path, scan: Path, preset: str = "epsilon-plus", target=None) -> np.ndarray:
    """The oracle for one subject: ``NeuroRelevanceLib.explain`` on the card's input, resampled onto the
    scan grid (KJI), without the batch code (``target``: a class index; None the predicted class)."""
    import torch

    from NeuroRelevanceLib import explain
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.nifti import read_nifti
    from NeuroRelevanceLib.preprocessing import prepare_input, resample

    loaded = load_model(card, device="cpu")
    array, grid = read_nifti(scan, dtype="float32")
    prepared = prepare_input([(array, grid)], loaded.card)
    result = explain(loaded.model, torch.from_numpy(prepared.array[None]), method="lrp", preset=preset,
                     target=target, device="cpu")
    return resample(result.relevance[0, 0].numpy(), prepared.grid, grid)
