"""The cohort pipeline with a model card: each scan goes through the card's preprocessing."""
import numpy as np
import pytest
import torch

from NeuroRelevanceLib.cohort import decompose_cohort
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.nifti import write_nifti
from NeuroRelevanceLib.preprocessing import prepare_input
from NeuroRelevanceLib.selftest import make_test_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_card_preprocessing_feeds_the_model_its_own_input(tmp_path):
    loaded = load_model(make_test_model(tmp_path), device="cpu")
    grid = Grid.from_parts((18, 20, 22), (1.5, 1.5, 1.5), (-16.0, -15.0, -14.0))
    rng = np.random.default_rng(0)
    k, j, i = np.mgrid[:18, :20, :22]
    paths, ages = [], []
    for n in range(12):
        scan = (100 + 30 * np.sin(i / (2.0 + n / 6)) + rng.normal(0, 3, grid.shape_kji)).astype(np.float32)
        paths.append(write_nifti(tmp_path / f"s{n}.nii.gz", scan, grid))
        ages.append(20.0 + 5 * n)
    result = decompose_cohort(paths, ages, loaded.model, card=loaded.card, rank=(2, 2), grid=False,
                              sparsity_fractions=(0.0,), alphas=(1.0,), n_iter_max=20, progress=None)
    # the oracle: the same scans prepared one by one as for a single run, and the layer read by hand
    layer = dict(loaded.model.named_modules())[result.activations.layer]
    seen = []
    hook = layer.register_forward_hook(lambda m, a, out: seen.append(out.detach().flatten(2)))
    with torch.no_grad():
        for path in paths:
            from NeuroRelevanceLib.nifti import read_nifti
            prepared = prepare_input([read_nifti(path, dtype=np.float32)], loaded.card)
            loaded.model(torch.from_numpy(prepared.array[None]))
    hook.remove()
    assert torch.allclose(result.activations.tensor, torch.cat(seen), atol=1e-5)
    assert result.input_grid.same_as(prepared.grid, atol=1e-9)


def test_multichannel_cards_are_refused(tmp_path):
    from NeuroRelevanceLib.models import card_from_dict

    card = card_from_dict({"architecture": {"class": "UNet3d"}, "weights": "w.safetensors",
                           "input": {"channels": ["a", "b"], "shape": [8, 8, 8]}})
    with pytest.raises(InputError, match="single-channel"):
        decompose_cohort([np.zeros((8, 8, 8))] * 4, [1, 2, 3, 4], torch.nn.Identity(), card=card,
                         rank=(2, 2), grid=False, progress=None)
