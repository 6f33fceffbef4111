"""NeuroRelevance: relevance maps for 3D brain networks, Qt-free and Slicer-free.

The public API is re-exported here and imported lazily, so ``import NeuroRelevanceLib`` is cheap
(no torch, no vtk) and each part pulls in only what it needs:

- ``explain``                          LRP (``engine``) and the other methods (``methods``), one entry point
                                       (``explanation.dispatch``)
- ``compare_methods``                  faithfulness / inclusivity / ground-truth metrics (``metrics``)
- ``available_atlases``, ``region_statistics``   atlas statistics (``NeuroRelevanceLib.regions``)
- ``decompose_cohort`` and friends     dataset-level Tucker decomposition (``NeuroRelevanceLib.cohort``)
- ``mrml``                             the MRML bridge (needs ``slicer-core``; takes the scene explicitly)
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access)
_LAZY = {
    "explain": "NeuroRelevanceLib.explanation.dispatch",
    "compare_methods": "NeuroRelevanceLib.metrics",
    "available_atlases": "NeuroRelevanceLib.regions",
    "region_statistics": "NeuroRelevanceLib.regions",
    "decompose_cohort": "NeuroRelevanceLib.cohort",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'NeuroRelevanceLib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
