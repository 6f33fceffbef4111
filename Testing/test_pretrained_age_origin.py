"""The brain-age head's bias fixed at the age with no age effect (pretrained.training.train_brain_age, age_origin).

The generator's age effects grow from zero at 20 years; with the head's bias frozen there, the features carry only
``age - 20``, the atrophy's own size, instead of a deviation from the mean age in both signs (evidence of "young",
healthy tissue everywhere). Checked on a tiny real PreActResNet3d trained for two epochs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from NeuroRelevanceLib.pretrained.data import ModelGrid, split_indices
from NeuroRelevanceLib.pretrained.training import T1Data, train_brain_age

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n: int = 12) -> T1Data:
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 8, 8, 8)
    x[:, :, 2:6, 2:6, 2:6] = torch.rand(n, 1, 4, 4, 4, generator=gen) * 0.5 + 0.5
    age = torch.linspace(25.0, 85.0, n)
    return T1Data(x=x, label=torch.zeros(n, dtype=torch.long), age=age, atrophy=np.zeros((n, 8, 8, 8)),
                  grid=ModelGrid((8, 8, 8), 4.0, (0.0, 0.0, 0.0)), split=split_indices(n), source={},
                  normalization={"type": "scale", "mask": "nonzero"})


@pytest.mark.parametrize("origin", [20.0, 35.5])
def test_age_origin_freezes_the_head_bias_there_and_is_recorded(origin):
    model, info = train_brain_age(_data(), seed=0, epochs=2, log=None, age_origin=origin)
    assert float(model.head.bias) == origin
    assert info["options"]["age_origin"] == origin
    assert any(p.requires_grad for p in model.head.parameters())   # the head's weights still train


def test_without_age_origin_the_head_bias_starts_at_the_mean_age_and_trains():
    data = _data()
    model, info = train_brain_age(data, seed=0, epochs=2, log=None)
    mean = float(data.age[list(data.split.train)].mean())
    assert float(model.head.bias) != pytest.approx(mean, abs=1e-6) and info["options"]["age_origin"] is None
