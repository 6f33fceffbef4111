"""Display windows for relevance maps (pure numpy: used by the MRML display and the run cache)."""
from __future__ import annotations

import numpy as np


def robust_window(values: np.ndarray, percentile: float = 99.5) -> float:
    """Display window: the ``percentile`` of |R| over nonzero voxels, so a few extreme voxels do
    not wash out the map (values beyond it show in the strongest colour)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float32)).ravel()
    magnitude = magnitude[magnitude > 0]
    return float(np.percentile(magnitude, percentile)) if magnitude.size else 0.0
