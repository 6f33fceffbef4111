"""Draw the NeuroRelevance icon (128 px PNG): an axial brain outline with a red/blue relevance overlay.

Our own drawing, reproducible: ``.venv/bin/python scripts/make_icon.py``.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def draw(path: Path, size: int = 128) -> None:
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    brain = ((x / 0.8) ** 2 + (y / 0.94) ** 2 < 1) & (np.abs(x) > 0.025)
    r = np.hypot(x / 0.8, y / 0.94)
    folds = 0.62 + 0.18 * np.sin(13 * x + 3 * np.sin(7 * y)) * np.sin(11 * y + 2 * np.sin(5 * x))
    folds = np.where(r > 0.9, 0.85, folds)  # cortex rim
    grey = np.where(brain, folds, 0.0)
    heat = (np.exp(-((x - 0.3) ** 2 + (y + 0.25) ** 2) / 0.04)
            - 0.8 * np.exp(-((x + 0.35) ** 2 + (y - 0.3) ** 2) / 0.03))
    heat = np.where(brain, heat, 0.0)
    rgba = np.zeros((size, size, 4))
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = brain
    red, blue = np.clip(heat, 0, 1), np.clip(-heat, 0, 1)
    rgba[..., 0] = np.where(brain, (1 - red - blue) * grey + red * 0.9 + blue * 0.15, 0)
    rgba[..., 1] = np.where(brain, (1 - red - blue) * grey + red * 0.12 + blue * 0.4, 0)
    rgba[..., 2] = np.where(brain, (1 - red - blue) * grey + red * 0.1 + blue * 0.95, 0)
    plt.imsave(path, np.clip(rgba, 0, 1))


if __name__ == "__main__":
    for target in (ROOT / "Resources" / "NeuroRelevance.png",
                   ROOT / "NeuroRelevance" / "Resources" / "Icons" / "NeuroRelevance.png"):
        draw(target)
        print(target)
