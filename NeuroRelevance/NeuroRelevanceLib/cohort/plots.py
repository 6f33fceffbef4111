"""PNG plots of a cohort decomposition (matplotlib, Agg backend; no display needed)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..annotation import add_caption


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_scree(scree: Mapping[str, Sequence[float]], path: str | Path, caption: Sequence[str] = ()) -> Path:
    """Singular values of the mode-1/2/3 unfoldings on a log scale, one panel per mode."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    titles = {"mode1": "mode 1 (subjects)", "mode2": "mode 2 (channels)", "mode3": "mode 3 (voxels)"}
    for ax, (key, values) in zip(axes, scree.items(), strict=False):  # three panels: modes past the third are not drawn
        vals = np.asarray(values, float)
        ax.semilogy(np.arange(1, len(vals) + 1), np.maximum(vals, 1e-300), "o-", ms=3)
        ax.set_title(titles.get(key, key))
        ax.set_xlabel("index")
        ax.set_ylabel("singular value")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout(rect=(0, add_caption(fig, caption), 1, 1))  # caption: what was decomposed
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_rank_errors(r1_values, r2_values, e_train: np.ndarray, e_val: np.ndarray,
                     suggested: tuple[int, int], path: str | Path, caption: Sequence[str] = ()) -> Path:
    """Train (dashed) and validation (solid) relative errors against R1, one line per R2."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cmap = plt.get_cmap("viridis")
    for j, r2 in enumerate(r2_values):
        col = cmap(j / max(len(r2_values) - 1, 1))
        ax.plot(r1_values, e_train[:, j], "--", color=col, lw=1)
        ax.plot(r1_values, e_val[:, j], "-", color=col, lw=1.5, label=f"R2={r2}")
    ax.axvline(suggested[0], color="k", ls=":", lw=1, label=f"suggested R1={suggested[0]}")
    ax.set_xticks(list(r1_values))
    ax.set_xlabel("R1")
    ax.set_ylabel("relative reconstruction error")
    ax.set_title("train (dashed) vs validation (solid)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, add_caption(fig, caption), 1, 1))  # caption: what was decomposed
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_loadings(loadings: np.ndarray, target: np.ndarray, path: str | Path,
                  target_name: str = "target", caption: Sequence[str] = ()) -> Path:
    """Scatter of each RoI's subject loading against the target, with a least-squares trend line."""
    plt = _pyplot()
    r = loadings.shape[1]
    cols = min(r, 4)
    rows = int(np.ceil(r / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for i in range(rows * cols):
        ax = axes.flat[i]
        if i >= r:
            ax.axis("off")
            continue
        y = loadings[:, i]
        ax.scatter(target, y, s=8, alpha=0.7)
        if np.ptp(target) > 0:
            slope, icpt = np.polyfit(target, y, 1)
            xs = np.linspace(np.min(target), np.max(target), 50)
            ax.plot(xs, slope * xs + icpt, "r-", lw=1.2)
            rho = np.corrcoef(target, y)[0, 1] if np.ptp(y) > 0 else np.nan
            ax.set_title(f"RoI {i + 1} (r = {rho:.2f})", fontsize=9)
        ax.set_xlabel(target_name, fontsize=8)
        ax.set_ylabel("loading", fontsize=8)
    fig.tight_layout(rect=(0, add_caption(fig, caption), 1, 1))  # caption: what was decomposed
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
