"""Cohort decomposition inputs: signed activations (the pre-activation ResNet's default layer),
sparsity, ranks, rank grids and the atlas are checked with clear errors before any work."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from NeuroRelevanceLib.cohort import constrained_nn_tucker, decompose_cohort
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.nets import build

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(sparsity_fractions=(0.0,), alphas=(1.0,), n_iter_max=40, grid_iter_max=15, device="cpu",
            progress=None)


@pytest.fixture(scope="module")
def resnet():
    return build("PreActResNet3d", seed=0, widths=(4, 8), units=(1, 1))


@pytest.fixture(scope="module")
def volumes():
    rng = np.random.default_rng(0)
    vols = []
    for n in range(20):
        vol = rng.normal(size=(16, 16, 16)).astype(np.float32) * 0.5
        vol[3:9, 4:10, 5:11] += 0.1 * n
        vols.append(vol)
    return vols, [20.0 + 3 * n for n in range(20)]


def test_default_layer_of_a_preact_resnet_is_signed_and_decomposed(resnet, volumes):
    vols, ages = volumes
    result = decompose_cohort(vols, ages, resnet, rank=(2, 2), grid=False, **FAST)
    summary = result.summary()
    a = result.activations.tensor
    assert result.activations.layer == "bn_final"
    assert summary["negative_fraction"] > 0.5 and summary["signed"] == "split"
    assert summary["decomposed_channels"] == 2 * a.shape[1]
    fit = result.linear.fit
    assert fit.errors[-1] < 0.9  # not collapsed to zero (relative error 1)
    # oracle: the positive and negative parts rebuild the signed activations of the training set
    rec = fit.to_tensor().double()
    c = a.shape[1]
    signed = rec[:, :c] - rec[:, c:]
    train = a[result.splits["train"]].double()
    err = float(torch.linalg.vector_norm(train - signed) / torch.linalg.vector_norm(train))
    assert err < 0.9
    assert all(math.isfinite(v) for v in result.linear.mae.values())


def test_signed_layers_can_be_refused_or_rectified(resnet, volumes):
    vols, ages = volumes
    with pytest.raises(InputError, match=r"bn_final.*negative.*ReLU"):
        decompose_cohort(vols, ages, resnet, rank=(2, 2), grid=False, signed="refuse", **FAST)
    result = decompose_cohort(vols, ages, resnet, rank=(2, 2), grid=False, signed="rectify", **FAST)
    assert result.summary()["signed"] == "rectify"
    assert result.summary()["decomposed_channels"] == result.activations.tensor.shape[1]
    with pytest.raises(InputError, match="signed"):
        decompose_cohort(vols, ages, resnet, rank=(2, 2), grid=False, signed="abs", **FAST)


def test_tucker_on_a_signed_tensor_says_what_it_needs():
    a = torch.randn(10, 4, 30, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InputError, match="negative"):
        constrained_nn_tucker(a, (2, 2), device="cpu")


def test_core_step_with_a_zero_factor_keeps_the_core():
    from NeuroRelevanceLib.cohort.tucker import _core_step

    h = torch.rand(2, 3)
    out = _core_step(torch.zeros(5, 2), torch.zeros(5, 3), torch.eye(3), h, 5)
    assert torch.equal(out, h)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(sparsity_fractions=(-0.1,)), "sparsity"), (dict(sparsity_fractions=(float("nan"),)), "sparsity"),
    (dict(sparsity_fractions=(float("inf"),)), "sparsity"), (dict(sparsity_fractions=()), "sparsity"),
    (dict(sparsity_fractions=(True,)), "sparsity"), (dict(sparsity_fractions="0.1"), "sparsity"),
    (dict(alphas=(-1.0,)), "alpha"), (dict(alphas=(float("nan"),)), "alpha"),
    (dict(rank=(2.5, 2)), "rank"), (dict(rank=(0, 2)), "rank"), (dict(rank=(2,)), "rank"),
    (dict(rank=("2", 2)), "rank"), (dict(rank=(99, 2)), "R1"),
    (dict(r1_values=[], rank=None), "R1"), (dict(r1_values=[2.5, 3], rank=None), "R1"),
    (dict(r1_values=[0, 2], rank=None), "R1"), (dict(r2_values=[50], rank=None), "R2"),
    (dict(r1_values=[99], rank=None), "R1"),
    (dict(n_iter_max=0), "n_iter_max"), (dict(tol=float("nan")), "tol"), (dict(output_index=3), "output_index"),
    (dict(batch_size=0), "batch_size"), (dict(atlas="AAL4"), "AAL4")])
def test_bad_options_are_refused_before_any_work(resnet, volumes, kwargs, fragment):
    vols, ages = volumes
    said = []
    options = {**FAST, "rank": (2, 2), "grid": False, "progress": said.append, **kwargs}
    if options["rank"] is None:
        options["grid"] = True
    with pytest.raises(InputError, match=fragment):
        decompose_cohort(vols, ages, resnet, **options)
    if fragment not in ("R1", "R2", "output_index"):  # these need the activations' shape
        assert not any("[1/5 activations]" in line and "/" in line.split("]")[1] for line in said)


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory, volumes):
    folder = tmp_path_factory.mktemp("cohort")
    vols, ages = volumes
    for k, vol in enumerate(vols[:8]):
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(folder / f"s{k}.nii.gz"))
    pd.DataFrame({"path": [f"s{k}.nii.gz" for k in range(8)], "target": ages[:8]}).to_csv(
        folder / "targets.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def card_path(tmp_path_factory, resnet):
    import json

    from NeuroRelevanceLib.models import save_weights
    from NeuroRelevanceLib.nets import spec

    folder = tmp_path_factory.mktemp("model")
    save_weights(resnet, folder / "net.safetensors")
    card = {"name": "r", "architecture": spec(resnet), "weights": "net.safetensors",
            "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [1.0, 1.0, 1.0]},
            "output": {"type": "regression", "units": "years"},
            "intended_use": "tests", "limitations": "tests only"}
    (folder / "card.json").write_text(json.dumps(card))
    return folder / "card.json"


@pytest.mark.parametrize("args,fragment", [
    (["--r1", "5", "2"], "--r1"), (["--r2", "3", "1"], "--r2"), (["--r1", "0", "3"], "--r1"),
    (["--sparsity", "-0.1"], "sparsity"), (["--sparsity", "nan"], "sparsity"),
    (["--atlas", "AAL4"], "AAL4"), (["--rank", "0", "2", "--no-grid"], "rank")])
def test_cli_refuses_bad_options_at_the_start(cohort_dir, card_path, tmp_path, capsys, args, fragment):
    from NeuroRelevanceLib.cli import main

    out = tmp_path / "out"
    code = main(["cohort", str(cohort_dir), "--model", str(card_path), "--out", str(out), "--quiet",
                 "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.strip().count("\n") == 0
    assert not out.exists()


@pytest.mark.parametrize("empty", ["sparsity_fractions", "alphas"])
def test_fit_linear_model_refuses_an_empty_search(empty):
    """An empty λ or α list left no best model: a TypeError (unpacking None) instead of a clear refusal."""
    from NeuroRelevanceLib.cohort import fit_linear_model

    a = torch.rand(6, 2, 8, dtype=torch.float64)
    with pytest.raises(InputError, match=f"{empty} is empty"):
        fit_linear_model(a[:4], np.arange(4.0), a[4:], np.arange(2.0), (2, 2), **{empty: ()})
