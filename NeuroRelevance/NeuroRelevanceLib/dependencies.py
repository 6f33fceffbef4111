"""Which third-party packages NeuroRelevanceLib needs, and which are missing in this Python.

Inside Slicer the module offers to ``pip_install`` what is missing (torch comes from Slicer's
PyTorch extension); in a venv ``run.py`` installs the pinned set.
"""
from __future__ import annotations

import importlib.util

#: import name -> pip requirement (as pinned in requirements/base.txt, minus torch)
REQUIRED = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "nibabel": "nibabel==5.4.2",
    "SimpleITK": "SimpleITK==2.5.7",
    "tensorly": "tensorly==0.10.0",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "safetensors": "safetensors==0.8.0",
}


def missing_packages() -> list[str]:
    """pip requirements of the packages that cannot be imported here (torch excluded)."""
    return [spec for module, spec in REQUIRED.items() if importlib.util.find_spec(module) is None]


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None
