"""Display windows for relevance maps (pure numpy: used by the MRML display and the run cache)."""
from __future__ import annotations

import numpy as np

#: the percentile of nonzero |R| a display window is set to, and how a colour bar says so
ROBUST_PERCENTILE = 99.5
ROBUST_WINDOW = f"{ROBUST_PERCENTILE:g}th percentile of nonzero |R|"
#: the display threshold every front end starts from (Slicer panel, console, web, exports): |R| under
#: 5 % of the window is drawn transparent, so near-zero relevance does not haze over the anatomy
DEFAULT_THRESHOLD = 0.05


def robust_window(values: np.ndarray, percentile: float = ROBUST_PERCENTILE) -> float:
    """Display window: the ``percentile`` of |R| over nonzero voxels, so a few extreme voxels do
    not wash out the map (values beyond it show in the strongest colour)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float32)).ravel()
    magnitude = magnitude[magnitude > 0]
    return float(np.percentile(magnitude, percentile)) if magnitude.size else 0.0
