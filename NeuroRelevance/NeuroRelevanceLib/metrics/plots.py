"""Perturbation curves as a PNG (matplotlib, no display needed)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_curves(curves: dict, fractions: np.ndarray, path: str | Path, title: str = "",
                caption: Sequence[str] = ()) -> Path:
    """Mean target score against the share of regions removed, one line per method; ``"random"`` dashed.

    ``caption``: lines under the chart (model, methods, target, the model's intended use).
    """
    import matplotlib

    from ..annotation import add_caption

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for name, scores in curves.items():
        style = dict(color="0.4", linestyle="--", linewidth=1.5) if name == "random" else dict(linewidth=1.8)
        ax.plot(100 * np.asarray(fractions), scores, label=name, **style)
    ax.set_xlabel("regions removed, most relevant first (%)")
    ax.set_ylabel("explained score (logit)")
    ax.set_title(title or "Region perturbation (a faster drop = a more faithful map)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, add_caption(fig, caption), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
