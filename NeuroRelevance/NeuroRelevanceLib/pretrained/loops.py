"""A small, deterministic training loop and the held-out metrics of the demo models.

``fit`` trains with Adam on in-memory tensors, evaluates on the validation set after every epoch
and keeps the weights of the best validation epoch (BatchNorm statistics are recomputed on the
training set before each evaluation). Metrics are computed with numpy from the
model's raw outputs: accuracy / balanced accuracy / ROC AUC for classifiers, MAE / RMSE /
Pearson r for regressors, Dice per class for segmenters.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from scipy import stats

Tensor = torch.Tensor


@dataclass
class FitResult:
    """What ``fit`` did: best epoch, its validation score and the per-epoch history."""

    best_epoch: int
    best_score: float
    seconds: float
    history: list[dict] = field(default_factory=list)


def predict(model: nn.Module, x: Tensor, batch_size: int = 8) -> Tensor:
    """Model outputs for ``x`` in eval mode, batched, without gradients (CPU tensor)."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(x[i:i + batch_size].to(device)).cpu())
    return torch.cat(outs)


def recalibrate_batchnorm(model: nn.Module, x: Tensor, batch_size: int = 8) -> None:
    """Replace BatchNorm running statistics by their exact average over ``x`` (weights unchanged).

    With small batches and a high learning rate the running averages lag behind the weights, and
    evaluation-mode outputs drift; one pass in training mode with cumulative averaging fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(model.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size].to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def fit(model: nn.Module, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, *,
        loss_fn: Callable[[Tensor, Tensor], Tensor], score_fn: Callable[[Tensor, Tensor], float],
        epochs: int, batch_size: int = 8, lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
        augment: Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]] | None = None,
        log: Callable[[str], None] | None = print) -> FitResult:
    """Train ``model`` in place with Adam; keep the weights of the epoch with the best ``score_fn``.

    ``score_fn(outputs, targets)`` is maximised on the validation set (return ``-MAE`` for a
    regressor). Shuffling uses its own generator seeded with ``seed``; ``augment(x, y, gen)``
    may transform each training batch (e.g. crop patches).
    """
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    best = (-np.inf, 0, copy.deepcopy(model.state_dict()))
    history = []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb, yb = augment(xb, yb, gen)
            opt.zero_grad()
            loss = loss_fn(model(xb.to(device)), yb.to(device))
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        recalibrate_batchnorm(model, x, batch_size)
        score = float(score_fn(predict(model, x_val, batch_size), y_val))
        history.append({"epoch": epoch, "train_loss": total / len(x), "val_score": score})
        if score > best[0]:
            best = (score, epoch, copy.deepcopy(model.state_dict()))
        if log is not None:
            log(f"  epoch {epoch:3d}  loss {total / len(x):.4f}  val {score:.4f}  "
                f"({time.perf_counter() - t0:.0f} s)")
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(best_epoch=best[1], best_score=best[0], seconds=time.perf_counter() - t0,
                     history=history)


def classification_metrics(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Accuracy, balanced accuracy and ROC AUC of class 1 (from the logit difference)."""
    labels_np = labels.numpy().astype(int)
    pred = logits.argmax(1).numpy()
    score = (logits[:, 1] - logits[:, 0]).numpy()
    recalls = [float((pred[labels_np == c] == c).mean()) for c in np.unique(labels_np)]
    out = {"accuracy": float((pred == labels_np).mean()), "balanced_accuracy": float(np.mean(recalls))}
    pos, neg = score[labels_np == 1], score[labels_np == 0]
    if len(pos) and len(neg):  # AUC = Mann-Whitney U / (n1 n0)
        u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
        out["roc_auc"] = float(u / (len(pos) * len(neg)))
    return out


def regression_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """MAE, RMSE, mean error (bias) and Pearson r of a single-output regressor."""
    p, t = pred.reshape(-1).numpy().astype(float), target.reshape(-1).numpy().astype(float)
    err = p - t
    r = float(stats.pearsonr(p, t).statistic) if len(p) > 2 and p.std() > 0 else float("nan")
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "bias": float(err.mean()), "pearson_r": r}


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    denom = pred.sum() + truth.sum()
    return 1.0 if denom == 0 else float(2.0 * (pred & truth).sum() / denom)


def segmentation_metrics(logits: Tensor, labels: Tensor, class_names: list[str]) -> dict[str, float]:
    """Mean Dice per subject for each foreground class and for the union of foreground classes."""
    pred = logits.argmax(1).numpy()
    lab = labels.numpy()
    out = {}
    for c in range(1, len(class_names)):
        out[f"dice_{class_names[c]}"] = float(np.mean([dice(p == c, t == c) for p, t in zip(pred, lab, strict=True)]))
    out["dice_lesion"] = float(np.mean([dice(p > 0, t > 0) for p, t in zip(pred, lab, strict=True)]))
    return out
