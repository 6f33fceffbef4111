"""Synthetic demo data with known ground truth (its scores are in ``NeuroRelevanceLib.metrics.groundtruth``).

- ``anatomy``      MNI152 template maps and a named atlas from installed wheels (no download)
- ``deform``       output grids and smooth random deformations
- ``atrophy``      age- and AD-like grey-matter loss and ventricle growth inside atlas regions
- ``cohort``       T1 cohort generator (in memory or NIfTI + manifest)
- ``lesions``      multi-channel (perfusion-like) lesion cohort with lesion masks

Submodules are imported on first use, so ``import NeuroRelevanceLib.demo`` is cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "generate_cohort": "cohort", "generate_cohort_arrays": "cohort", "load_cohort": "cohort",
    "synthesize_subject": "cohort", "cohort_table": "cohort",
    "generate_lesion_cohort": "lesions", "generate_lesion_arrays": "lesions",
    "synthesize_lesion_subject": "lesions", "load_lesion_cohort": "lesions",
    "load_anatomy": "anatomy",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'NeuroRelevanceLib.demo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
