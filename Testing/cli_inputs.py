"""Small real inputs for the command-line tests: a model card, scans, heatmaps, an atlas, a cohort."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np


def make_inputs(folder: Path) -> SimpleNamespace:
    """Write every file a sub-command needs (all tiny) into ``folder``; returns their paths."""
    import torch

    from NeuroRelevanceLib.models import save_weights
    from NeuroRelevanceLib.nets import build, spec

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-20, -22, -18)
    torch.manual_seed(0)
    cards = {}
    for name, outputs, kind, classes in (("classifier", 2, "classification", ["CN", "AD"]),
                                         ("regressor", 1, "regression", ["age"])):
        net = build("DeepTaylorCNN", seed=1, in_channels=1, n_outputs=outputs, channels=(4, 8))
        save_weights(net, folder / f"{name}.safetensors")
        card = {"name": name, "architecture": spec(net), "weights": f"{name}.safetensors",
                "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [2.5, 2.5, 2.5],
                          "normalization": {"type": "zscore"}},
                "output": {"type": kind, "classes": classes},
                "intended_use": "Command-line tests.", "limitations": "Untrained; not for any use."}
        (folder / f"{name}.json").write_text(json.dumps(card))
        cards[name] = folder / f"{name}.json"
    corrupt = dict(json.loads(cards["classifier"].read_text()), weights="corrupt.safetensors")
    (folder / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" + b"\x00" * 64)
    (folder / "corrupt.json").write_text(json.dumps(corrupt))
    (folder / "truncated.safetensors").write_bytes((folder / "classifier.safetensors").read_bytes()[:200])
    (folder / "truncated.json").write_text(json.dumps(dict(corrupt, weights="truncated.safetensors")))
    (folder / "notjson.json").write_text("{ this is not json")
    (folder / "garbage.pt").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    scans = []
    for k in range(8):
        volume = (rng.random((20, 22, 18)) * 0.3).astype(np.float32)
        volume[6:14, 6:16, 5:12] += (k + 2) / 4.0
        nib.save(nib.Nifti1Image(volume, affine), folder / f"sub{k}.nii.gz")
        scans.append(folder / f"sub{k}.nii.gz")
    (folder / "targets.csv").write_text("path,target\n" + "".join(
        f"sub{k}.nii.gz,{40 + 5 * k}\n" for k in range(8)))
    labels = np.zeros((20, 22, 18), np.int16)
    labels[:10], labels[10:] = 1, 2
    nib.save(nib.Nifti1Image(labels, affine), folder / "atlas.nii.gz")
    (folder / "atlas.csv").write_text("id,name\n1,Left\n2,Right\n")
    mask = np.zeros((20, 22, 18), np.uint8)
    mask[8:12, 8:12, 6:10] = 1
    far = affine.copy()
    far[:3, 3] += 1000.0  # the same mask 1 m away from the scans
    nib.save(nib.Nifti1Image(mask, far), folder / "far_mask.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros_like(mask), affine), folder / "empty_mask.nii.gz")
    heat = rng.normal(size=(20, 22, 18)).astype(np.float32)
    nib.save(nib.Nifti1Image(heat, affine), folder / "heat.nii.gz")
    (folder / "text.nii.gz").write_text("not an image")
    blocker = folder / "a-file"
    blocker.write_text("a file where a folder is expected")
    return SimpleNamespace(folder=folder, classifier=cards["classifier"], regressor=cards["regressor"],
                           corrupt=folder / "corrupt.json", truncated=folder / "truncated.json",
                           notjson=folder / "notjson.json", garbage=folder / "garbage.pt",
                           scans=scans, atlas=folder / "atlas.nii.gz", heat=folder / "heat.nii.gz",
                           text=folder / "text.nii.gz", blocker=blocker, cohort=folder,
                           far_mask=folder / "far_mask.nii.gz", empty_mask=folder / "empty_mask.nii.gz")


def error_line(capsys) -> str:
    """The one line a command printed on stderr for a user error (no traceback, no "unexpected error")."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "unexpected error" not in lines[0] and "Traceback" not in captured.err, lines[0]
    return lines[0]
