"""The shipped demo networks: cards load without unpickling, metrics are plausible, held-out
subjects regenerated from the seed are predicted as the card's metrics say, and the training
recipe writes valid cards (a tiny run)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from NeuroRelevanceLib import nets
from NeuroRelevanceLib.demo.deform import make_grid
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.models import load_model, read_card
from NeuroRelevanceLib.pretrained import MODELS, available_models, model_card_path
from NeuroRelevanceLib.pretrained.data import model_grid_for, normalized_channels, split_indices, to_model_space
from NeuroRelevanceLib.pretrained.heldout import card_json, held_out_indices, held_out_subjects
from NeuroRelevanceLib.pretrained.loops import classification_metrics, dice, regression_metrics
from NeuroRelevanceLib.pretrained.training import center_logits

MB = 1024 * 1024

pytestmark = pytest.mark.skipif(available_models() != list(MODELS),
                                reason="demo weights not built yet (scripts/train_demo_models.py)")


@pytest.fixture(scope="module")
def loaded():
    return {name: load_model(model_card_path(name), device="cpu") for name in MODELS}


def test_every_card_loads_from_safetensors_without_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a demo model must load without torch.load / pickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    for name in MODELS:
        path = model_card_path(name)
        assert read_card(path).weights == f"{name}.safetensors"
        result = load_model(path, device="cpu")
        assert result.format == "card" and not result.model.training
        assert (path.parent / f"{name}.safetensors").stat().st_size <= 5 * MB


def test_cards_describe_the_architecture_and_the_generator_grid(loaded):
    for name, result in loaded.items():
        raw = card_json(model_card_path(name))
        assert raw["architecture"] == nets.spec(result.model)
        spacing = raw["training"]["cohort"]["spacing"]
        gen = make_grid(spacing)  # the generator's template-space grid
        inp = result.card.input
        assert inp.spacing == (spacing,) * 3 and inp.orientation == "RAS"
        np.testing.assert_allclose(inp.origin, gen.origin)  # RAS of voxel 0
        multiple = 4 if name == "lesion_unet" else 1
        assert inp.shape == tuple(-(-n // multiple) * multiple for n in gen.shape_kji)
        assert len(inp.channels) == result.in_channels
    assert loaded["ad_cnn"].card.output.classes == ("control", "AD")
    assert loaded["brain_age_resnet"].card.output.units == "years"
    assert loaded["brain_age_resnet"].card.output.type == "regression"
    assert loaded["lesion_unet"].card.output.type == "segmentation"
    assert loaded["lesion_unet"].card.output.classes == ("background", "lesion")
    assert loaded["lesion_unet"].card.input.channels == ("ADC", "rCBF", "rCBV", "Tmax")


def test_held_out_metrics_are_present_and_plausible(loaded):
    ad = loaded["ad_cnn"].card.metrics
    assert ad["n_test"] >= 20 and 0.85 <= ad["accuracy"] <= 1.0 and ad["roc_auc"] >= 0.9
    age = loaded["brain_age_resnet"].card.metrics
    assert age["n_test"] >= 20 and 0 < age["mae"] < 10.0 and age["pearson_r"] > 0.8
    assert age["rmse"] >= age["mae"]
    les = loaded["lesion_unet"].card.metrics
    assert les["n_test"] >= 5 and 0.5 <= les["dice_lesion"] <= 1.0
    for name in MODELS:
        split = card_json(model_card_path(name))["training"]["split"]
        assert split["train"][1] <= split["val"][0] and split["val"][1] <= split["test"][0]


def test_ad_model_classifies_regenerated_held_out_subjects(loaded):
    path = model_card_path("ad_cnn")
    model = loaded["ad_cnn"].model
    indices = held_out_indices(path)
    chosen = [next(held_out_subjects(path, indices=indices, diagnosis=d)) for d in ("AD", "control")]
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack([s.x for s in chosen])))
    assert logits.argmax(1).tolist() == [1, 0]
    torch.testing.assert_close(logits.sum(1), torch.zeros(2), atol=1e-4, rtol=0)  # centred logits


def test_brain_age_model_on_regenerated_held_out_subjects(loaded):
    path = model_card_path("brain_age_resnet")
    mae = loaded["brain_age_resnet"].card.metrics["mae"]
    subjects = list(held_out_subjects(path, indices=held_out_indices(path)[:3]))
    with torch.no_grad():
        pred = loaded["brain_age_resnet"].model(torch.from_numpy(np.stack([s.x for s in subjects])))
    ages = np.array([s.age for s in subjects])
    assert np.all(np.abs(pred.reshape(-1).numpy() - ages) < 3 * mae + 5)


def test_lesion_model_finds_a_regenerated_held_out_lesion(loaded):
    path = model_card_path("lesion_unet")
    subject = next(held_out_subjects(path, indices=held_out_indices(path)[:1]))
    with torch.no_grad():
        pred = loaded["lesion_unet"].model(torch.from_numpy(subject.x[None])).argmax(1)[0].numpy()
    assert dice(pred > 0, subject.labels > 0) > 0.4


@pytest.mark.parametrize("name", MODELS)
def test_generator_still_makes_the_subjects_the_models_were_trained_on(name):
    """Fails when the demo generator changed after training: then rerun scripts/train_demo_models.py."""
    path = model_card_path(name)
    check = card_json(path)["training"]["generator_check"]
    subject = next(held_out_subjects(path, indices=[check["subject"]]))
    assert subject.x.mean() == pytest.approx(check["input_mean"], abs=2e-3)
    assert subject.x.std() == pytest.approx(check["input_sd"], abs=2e-3)
    assert abs(int((subject.labels > 0).sum()) - check["label_voxels"]) <= 0.01 * check["label_voxels"] + 2


def test_training_inputs_equal_the_product_preprocessing():
    """The training path (pad + normalise) against the SimpleITK path the product uses."""
    from NeuroRelevanceLib.demo.cohort import cohort_table, synthesize_subject
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    path = model_card_path("ad_cnn")
    raw = card_json(path)
    cohort = raw["training"]["cohort"]
    i = held_out_indices(path)[0]
    row = cohort_table(cohort["n_subjects"], seed=cohort["seed"]).iloc[i]
    options = generator_options(path)     # seed, spacing, atrophy pattern, skull stripping
    assert options["params"].pattern == cohort.get("pattern", "ribbon")
    s = synthesize_subject(i, float(row["age"]), str(row["diagnosis"]), **options)
    grid = model_grid_for(s.grid)
    ours = normalized_channels(s.image[None], grid, raw["input"]["normalization"])
    product = next(held_out_subjects(path, indices=[i]))
    np.testing.assert_allclose(ours, product.x, atol=1e-4)  # SimpleITK float32 arithmetic
    np.testing.assert_array_equal(to_model_space(s.atrophy, grid), product.labels)


def test_center_logits_keeps_probabilities():
    model = nets.build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=3, channels=[2, 2])
    x = torch.randn(2, 1, 8, 8, 8)
    with torch.no_grad():
        before = model(x)
        center_logits(model)
        after = model(x)
    torch.testing.assert_close(after.softmax(1), before.softmax(1))
    torch.testing.assert_close(after, before - before.mean(1, keepdim=True))


def test_split_and_grid_helpers():
    s = split_indices(20)
    assert s.train + s.val + s.test == tuple(range(20)) and len(s.test) == 4 and len(s.val) == 3
    with pytest.raises(ValueError, match="too few"):
        split_indices(3)
    g = model_grid_for(Grid((43, 51, 41), np.diag([4.0, 4.0, 4.0, 1.0])), multiple=4)
    assert g.shape_kji == (44, 52, 44)
    padded = to_model_space(np.ones((43, 51, 41)), g)
    assert padded.shape == (44, 52, 44) and padded.sum() == 41 * 51 * 43 and padded[43].sum() == 0


def test_metric_helpers_against_hand_values():
    m = classification_metrics(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [0.0, -1.0]]),
                               torch.tensor([1, 0, 0, 0]))
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["roc_auc"] == pytest.approx(2 / 3)
    r = regression_metrics(torch.tensor([10.0, 20.0, 33.0]), torch.tensor([12.0, 20.0, 30.0]))
    assert r["mae"] == pytest.approx(5 / 3) and r["bias"] == pytest.approx(1 / 3)
    assert dice(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == 0.5


def test_tiny_training_run_writes_loadable_cards(tmp_path):
    from NeuroRelevanceLib.pretrained.training import train_all

    torch.set_num_threads(2)
    metrics = train_all(tmp_path, seed=1, spacing=8.0, n_subjects=10, n_lesion_subjects=8,
                        epochs=(1, 1, 1), log=None)
    assert set(metrics) == set(MODELS)
    for name in MODELS:
        card = json.loads((tmp_path / f"{name}.json").read_text())
        assert card["training"]["cohort"]["spacing"] == 8.0 and card["training"]["seed"] == 1
        assert load_model(tmp_path / f"{name}.json", device="cpu").format == "card"
