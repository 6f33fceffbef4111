"""Training-time intensity jitter for the AD model (train_ad_cnn's ``intensity_jitter``, the script's --ad-jitter).

Why it exists: AD-like atrophy adds CSF, which lowers the percentile normalisation's low anchor and so raises
every normalised brain voxel of an AD scan; the network could read AD from global intensity, anywhere. The
brain-age model's jitter (:func:`jitter_intensity`, tested in test_pretrained_augment.py) makes that useless.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from NeuroRelevanceLib.pretrained.training import t1_data, train_ad_cnn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_t1():
    return t1_data(10, spacing=8.0, seed=1, pattern="compact", skull_strip=True)


def _weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_ad_jitter_changes_training_and_is_recorded(tiny_t1):
    torch.set_num_threads(1)
    plain, info0 = train_ad_cnn(tiny_t1, seed=3, epochs=1, log=None)
    again, _ = train_ad_cnn(tiny_t1, seed=3, epochs=1, log=None, intensity_jitter=0.0)
    jittered, info = train_ad_cnn(tiny_t1, seed=3, epochs=1, log=None, intensity_jitter=0.05)
    assert torch.equal(_weights(plain), _weights(again))          # 0 is exactly the old recipe
    assert not torch.allclose(_weights(plain), _weights(jittered))  # the jitter reaches the training batches
    assert info0["options"]["intensity_jitter"] == 0.0
    assert info["options"]["intensity_jitter"] == 0.05


def test_script_passes_ad_jitter_into_the_card(tmp_path):
    spec = importlib.util.spec_from_file_location("train_demo_models", ROOT / "scripts" / "train_demo_models.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path), "--models", "ad_cnn", "--spacing", "8", "--subjects", "10",
                        "--epochs", "1", "1", "1", "--pattern", "compact", "--skull-strip",
                        "--ad-jitter", "0.05", "--threads", "1"]) == 0
    card = json.loads((tmp_path / "ad_cnn.json").read_text())
    assert card["training"]["options"]["intensity_jitter"] == 0.05
