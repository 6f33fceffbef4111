"""Recipes that train the three demo networks on the synthetic cohorts, reproducibly from a seed.

1. ``ad_cnn``           DeepTaylorCNN, AD-like vs control, on the T1 cohort;
2. ``brain_age_resnet`` PreActResNet3d, age in years, on the same T1 cohort (same split);
3. ``lesion_unet``      UNet3d, background / lesion (core and penumbra), on the multi-channel lesion cohort.

Everything is generated in memory (``NeuroRelevanceLib.demo``), split by subject index into
train / validation / held-out test (:func:`data.split_indices`), trained on the CPU (or CUDA when
present) and scored on the held-out subjects; :func:`train_all` writes weights and cards.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import nets
from .cards import write_model
from .data import (
    LESION_NORMALIZATION,
    T1_NORMALIZATION,
    ModelGrid,
    Split,
    model_grid_for,
    normalized_channels,
    split_indices,
    to_model_space,
)
from .loops import classification_metrics, fit, predict, regression_metrics, segmentation_metrics

AD_CLASSES = ["control", "AD"]
LESION_CLASSES = ["background", "lesion"]
AD_KWARGS = {"in_channels": 1, "n_outputs": 2, "channels": [4, 8, 16]}
AGE_KWARGS = {"in_channels": 1, "n_outputs": 1, "widths": [4, 8, 16], "units": [1, 1, 1],
              "task": "regression", "stem_stride": 2}
LESION_KWARGS: dict[str, Any] = {"in_channels": 4, "n_classes": 2, "features": [4, 8, 16]}


@dataclass
class T1Data:
    """The T1 cohort on the model grid: inputs (n, 1, D, H, W), labels, ages, atrophy maps (KJI)."""

    x: torch.Tensor
    label: torch.Tensor
    age: torch.Tensor
    atrophy: np.ndarray
    grid: ModelGrid
    split: Split
    source: dict
    normalization: dict


@dataclass
class LesionData:
    """The lesion cohort on the model grid: inputs (n, C, D, H, W), label maps (n, D, H, W)."""

    x: torch.Tensor
    lesion: torch.Tensor
    channels: list[str]
    grid: ModelGrid
    split: Split
    source: dict
    normalization: dict


def t1_data(n_subjects: int = 160, spacing: float = 4.0, seed: int = 0,
            normalization: dict | None = None, pattern: str = "ribbon",
            skull_strip: bool = False, age_pattern: str = "frontoparietal",
            age_loss_at_90: float | None = None) -> T1Data:
    """Generate the T1 cohort (ages 20-90, half AD-like) and put it on the model grid.

    ``pattern`` ("ribbon" or "compact"), ``age_pattern`` ("frontoparietal" or "focal"),
    ``skull_strip`` and ``age_loss_at_90`` (the age-related loss fraction at 90 years; None: the
    generator's default) are the generator's options; they are recorded in ``source`` so that the
    card can regenerate the held-out subjects.
    """
    normalization = dict(normalization or T1_NORMALIZATION)
    from ..demo import generate_cohort_arrays
    from ..demo.atrophy import AtrophyParams

    params = AtrophyParams(pattern=pattern, age_pattern=age_pattern)
    if age_loss_at_90 is not None:
        params = dataclasses.replace(params, age_loss_at_90=float(age_loss_at_90))
    cohort = generate_cohort_arrays(n_subjects, spacing=spacing, seed=seed, params=params,
                                    skull_strip=skull_strip)
    grid = model_grid_for(cohort.grid)
    x = np.stack([normalized_channels(im[None], grid, normalization) for im in cohort.images])
    labels = torch.tensor(np.array(cohort.table["label"]), dtype=torch.long)
    return T1Data(x=torch.from_numpy(x), label=labels,
                  age=torch.tensor(np.array(cohort.table["age"]), dtype=torch.float32),
                  atrophy=to_model_space(cohort.atrophy, grid), grid=grid,
                  split=split_indices(n_subjects),
                  source={"generator": "NeuroRelevanceLib.demo.generate_cohort_arrays",
                          "n_subjects": int(n_subjects), "spacing": float(spacing), "seed": int(seed),
                          "pattern": pattern, "skull_strip": bool(skull_strip),
                          "age_pattern": age_pattern, "age_loss_at_90": params.age_loss_at_90},
                  normalization=normalization)


def lesion_data(n_subjects: int = 60, spacing: float = 4.0, seed: int = 0) -> LesionData:
    """Generate the lesion cohort (four perfusion/diffusion-like channels) on a grid divisible by 4."""
    from ..demo import generate_lesion_arrays

    cohort = generate_lesion_arrays(n_subjects, spacing=spacing, seed=seed)
    divisor = 2 ** (len(LESION_KWARGS["features"]) - 1)
    grid = model_grid_for(cohort.grid, multiple=divisor)
    x = np.stack([normalized_channels(im, grid, LESION_NORMALIZATION) for im in cohort.images])
    lesion = (to_model_space(cohort.lesions, grid) > 0).astype(np.int64)  # core or penumbra
    return LesionData(x=torch.from_numpy(x), lesion=torch.from_numpy(lesion),
                      channels=list(cohort.channel_names), grid=grid,
                      split=split_indices(n_subjects),
                      source={"generator": "NeuroRelevanceLib.demo.generate_lesion_arrays",
                              "n_subjects": int(n_subjects), "spacing": float(spacing),
                              "seed": int(seed), "channels": list(cohort.channel_names)},
                      normalization=dict(LESION_NORMALIZATION))


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def center_logits(model: nn.Module) -> None:
    """Subtract the mean over classes from the last linear layer: probabilities are unchanged,
    and each logit becomes its class's log-odds against the class average (for two classes,
    half the log-odds), so explaining one logit explains the decision."""
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        fc.weight.sub_(fc.weight.mean(0, keepdim=True))
        if fc.bias is not None:
            fc.bias.sub_(fc.bias.mean())


def train_ad_cnn(data: T1Data, seed: int = 0, epochs: int = 6,
                 log: Callable[[str], None] | None = print,
                 activation_l1: float = 0.0, channels: list[int] | None = None,
                 pool: str = "avg", intensity_jitter: float = 0.0) -> tuple[nn.Module, dict]:
    """Train the AD-vs-control DeepTaylorCNN; return it (centred logits, eval mode) and metrics.

    ``intensity_jitter`` > 0: a random global affine map of each training scan's brain (:func:`jitter_intensity`);
    atrophy adds CSF, which moves the normalisation's low anchor, so AD would otherwise show in global intensity.

    ``activation_l1`` > 0 adds that weight times the mean of the last feature maps (before the
    global pool) to the loss: sparse evidence, so the few places that carry it stand out.
    """
    tr, va, te = (list(s) for s in (data.split.train, data.split.val, data.split.test))
    kwargs = dict(AD_KWARGS, pool=pool, **({"channels": list(channels)} if channels else {}))
    model = nets.build("DeepTaylorCNN", seed=seed, **kwargs).to(_device())
    features: list[torch.Tensor] = []
    hook = cast(nn.Module, model.features).register_forward_hook(lambda m, i, o: features.append(o))

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        penalty = features[-1].mean() if features else out.new_zeros(())
        features.clear()
        return F.cross_entropy(out, y) + activation_l1 * penalty

    def score(out: torch.Tensor, y: torch.Tensor) -> float:  # accuracy, ties broken by loss
        features.clear()
        return classification_metrics(out, y)["accuracy"] - 1e-3 * float(F.cross_entropy(out, y))

    try:
        result = fit(model, data.x[tr], data.label[tr], data.x[va], data.label[va],
                     loss_fn=loss_fn, score_fn=score, epochs=epochs, lr=3e-3, seed=seed, log=log,
                     augment=jitter_intensity(intensity_jitter) if intensity_jitter > 0 else None)
    finally:
        hook.remove()
    center_logits(model)
    metrics = classification_metrics(predict(model, data.x[te]), data.label[te])
    metrics["validation_accuracy"] = classification_metrics(
        predict(model, data.x[va]), data.label[va])["accuracy"]
    metrics.update(n_test=len(te), n_val=len(va), n_train=len(tr))
    return model.cpu().eval(), {"metrics": metrics, "fit": result,
                                "options": {"activation_l1": activation_l1,
                                            "intensity_jitter": intensity_jitter}}


def train_brain_age(data: T1Data, seed: int = 0, epochs: int = 12,
                    log: Callable[[str], None] | None = print,
                    activation_l1: float = 0.0, intensity_jitter: float = 0.0,
                    age_origin: float | None = None) -> tuple[nn.Module, dict]:
    """Train the PreActResNet3d brain-age regressor (output in years); return it and metrics.

    ``intensity_jitter`` > 0 rescales each training scan's brain voxels by a random global affine map
    (:func:`jitter_intensity`): the input normalisation's statistics shift with age (ventricle growth
    moves the low percentile), and the jitter makes that shift useless as age evidence.

    ``activation_l1`` > 0 adds that weight times the mean of the last (rectified) feature maps to the
    loss: the head's bias carries the mean age and the features fire only where the evidence is.

    ``age_origin`` (years): the head's bias is fixed there (not trained) instead of starting at the training
    mean; at the age where the generator's age effects are zero (20) the features carry only ``age - 20``,
    the size of the atrophy, rather than a deviation from the mean in both signs.
    """
    tr, va, te = (list(s) for s in (data.split.train, data.split.val, data.split.test))
    mean, sd = float(data.age[tr].mean()), float(data.age[tr].std())
    model = nets.build("PreActResNet3d", seed=seed, **AGE_KWARGS).to(_device())
    with torch.no_grad():  # start at the mean age, scale the head to years
        head = cast(nn.Linear, model.head)
        head.bias.fill_(mean if age_origin is None else float(age_origin))
        head.weight.mul_(sd)
    if age_origin is not None:
        head.bias.requires_grad_(False)
    features: list[torch.Tensor] = []
    hook = cast(nn.Module, model.bn_final).register_forward_hook(lambda m, i, o: features.append(F.relu(o)))

    def loss(out: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        penalty = features[-1].mean() if features else out.new_zeros(())
        features.clear()
        return F.smooth_l1_loss(out.reshape(-1) / sd, age / sd) + activation_l1 * penalty

    def score(out: torch.Tensor, age: torch.Tensor) -> float:
        features.clear()
        return -regression_metrics(out, age)["mae"]

    try:
        result = fit(model, data.x[tr], data.age[tr], data.x[va], data.age[va], loss_fn=loss,
                     score_fn=score, epochs=epochs, lr=3e-3, seed=seed, log=log,
                     augment=jitter_intensity(intensity_jitter) if intensity_jitter > 0 else None)
    finally:
        hook.remove()
        head.bias.requires_grad_(True)
    metrics = regression_metrics(predict(model, data.x[te]), data.age[te])
    metrics["validation_mae"] = regression_metrics(predict(model, data.x[va]), data.age[va])["mae"]
    metrics.update(n_test=len(te), n_val=len(va), n_train=len(tr))
    return model.cpu().eval(), {"metrics": metrics, "fit": result,
                                "options": {"activation_l1": activation_l1,
                                            "intensity_jitter": intensity_jitter,
                                            "age_origin": age_origin}}


def jitter_intensity(amount: float):
    """Batch transform: each scan's non-zero voxels ``v`` become ``(1 + s) v + o`` with ``s`` and ``o``
    uniform in ``[-amount, amount]`` (one draw per scan); the background stays 0."""

    def apply(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(x),) + (1,) * (x.dim() - 1)
        scale = 1 + (torch.rand(shape, generator=gen) * 2 - 1) * amount
        offset = (torch.rand(shape, generator=gen) * 2 - 1) * amount
        return torch.where(x != 0, x * scale + offset, x), y

    return apply


def _seg_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice of the foreground classes (lesions fill ~1% of the grid)."""
    ce = F.cross_entropy(out, target)
    prob = out.softmax(1)
    onehot = F.one_hot(target, out.shape[1]).permute(0, 4, 1, 2, 3).to(prob.dtype)
    inter = (prob * onehot)[:, 1:].sum((0, 2, 3, 4))
    denom = (prob + onehot)[:, 1:].sum((0, 2, 3, 4))
    return ce + (1 - (2 * inter + 1) / (denom + 1)).mean()


def lesion_patches(size: int = 24, p_lesion: float = 0.7):
    """Batch transform for fully convolutional training: one ``size``³ patch per subject, centred
    on a random lesion voxel with probability ``p_lesion`` (lesions fill ~1% of the grid)."""

    def crop(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        shape = torch.tensor(y.shape[1:])
        for xi, yi in zip(x, y, strict=True):
            fg = torch.nonzero(yi > 0)
            if len(fg) and float(torch.rand(1, generator=gen)) < p_lesion:
                centre = fg[int(torch.randint(len(fg), (1,), generator=gen))]
            else:
                centre = (torch.rand(3, generator=gen) * shape).long()
            lo = (centre - size // 2).clamp(min=0)
            lo = torch.minimum(lo, shape - size).clamp(min=0)
            sl = tuple(slice(int(a), int(a) + size) for a in lo)
            xs.append(xi[(slice(None),) + sl])
            ys.append(yi[sl])
        return torch.stack(xs), torch.stack(ys)

    return crop


def train_lesion_unet(data: LesionData, seed: int = 0, epochs: int = 40,
                      log: Callable[[str], None] | None = print) -> tuple[nn.Module, dict]:
    """Train the multi-channel UNet3d lesion segmenter on patches; return it and per-class Dice
    (scored on whole held-out volumes)."""
    tr, va, te = (list(s) for s in (data.split.train, data.split.val, data.split.test))
    model = nets.build("UNet3d", seed=seed, **LESION_KWARGS).to(_device())
    result = fit(model, data.x[tr], data.lesion[tr], data.x[va], data.lesion[va], loss_fn=_seg_loss,
                 score_fn=lambda o, t: segmentation_metrics(o, t, LESION_CLASSES)["dice_lesion"],
                 epochs=epochs, batch_size=4, lr=3e-3, seed=seed, augment=lesion_patches(),
                 log=log)
    metrics = segmentation_metrics(predict(model, data.x[te], 4), data.lesion[te], LESION_CLASSES)
    metrics["validation_dice_lesion"] = segmentation_metrics(
        predict(model, data.x[va], 4), data.lesion[va], LESION_CLASSES)["dice_lesion"]
    metrics.update(n_test=len(te), n_val=len(va), n_train=len(tr))
    return model.cpu().eval(), {"metrics": metrics, "fit": result}


def train_all(out_dir: str | Path, *, seed: int = 0, spacing: float = 4.0, n_subjects: int = 160,
              n_lesion_subjects: int = 60, epochs: tuple[int, int, int] = (6, 12, 40),
              models: tuple[str, ...] = ("ad_cnn", "brain_age_resnet", "lesion_unet"),
              t1_normalization: dict | None = None, activation_l1: float = 0.0,
              ad_channels: list[int] | None = None, ad_pool: str = "avg",
              pattern: str = "ribbon", skull_strip: bool = False,
              age_pattern: str = "frontoparietal", age_l1: float = 0.0,
              age_loss_at_90: float | None = None, age_jitter: float = 0.0,
              age_origin: float | None = None, train_seed: int | None = None, ad_jitter: float = 0.0,
              log: Callable[[str], None] | None = print) -> dict[str, dict]:
    """Generate the cohorts, train the requested demo models and write ``<name>.json`` +
    ``<name>.safetensors`` into ``out_dir``; return each model's metrics.

    ``seed`` makes the cohorts; ``train_seed`` (default: ``seed``) the weights' initialisation and
    the batch order, so that training runs on the same cohort and split can be compared."""
    train_seed = seed if train_seed is None else int(train_seed)
    torch.manual_seed(train_seed)
    say = log or (lambda s: None)
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    if {"ad_cnn", "brain_age_resnet"} & set(models):
        say(f"generating the T1 cohort: {n_subjects} subjects at {spacing} mm (seed {seed}, "
            f"{pattern} atrophy, {age_pattern} age effect"
            f"{'' if age_loss_at_90 is None else f' (loss {age_loss_at_90:g} at 90)'}, "
            f"{'skull-stripped' if skull_strip else 'scalp kept'})")
        t1 = t1_data(n_subjects, spacing, seed, t1_normalization, pattern, skull_strip, age_pattern,
                     age_loss_at_90)
        say(f"  done in {time.perf_counter() - t0:.0f} s, input {tuple(t1.x.shape[1:])}")
        if "ad_cnn" in models:
            say("training ad_cnn (DeepTaylorCNN, control vs AD)")
            model, info = train_ad_cnn(t1, train_seed, epochs[0], log, activation_l1, ad_channels, ad_pool,
                                       ad_jitter)
            write_model("ad_cnn", model, info, t1, out_dir, train_seed)
            out["ad_cnn"] = info["metrics"]
            say(f"  held-out: {info['metrics']}")
        if "brain_age_resnet" in models:
            say("training brain_age_resnet (PreActResNet3d, age in years)")
            model, info = train_brain_age(t1, train_seed, epochs[1], log, age_l1, age_jitter, age_origin)
            write_model("brain_age_resnet", model, info, t1, out_dir, train_seed)
            out["brain_age_resnet"] = info["metrics"]
            say(f"  held-out: {info['metrics']}")
    if "lesion_unet" in models:
        t2 = time.perf_counter()
        say(f"generating the lesion cohort: {n_lesion_subjects} subjects at {spacing} mm")
        les = lesion_data(n_lesion_subjects, spacing, seed)
        say(f"  done in {time.perf_counter() - t2:.0f} s, input {tuple(les.x.shape[1:])}")
        say("training lesion_unet (UNet3d, background/lesion)")
        model, info = train_lesion_unet(les, train_seed, epochs[2], log)
        write_model("lesion_unet", model, info, les, out_dir, train_seed)
        out["lesion_unet"] = info["metrics"]
        say(f"  held-out: {info['metrics']}")
    say(f"all done in {time.perf_counter() - t0:.0f} s")
    return out
