"""Shared fixtures: real MRML scenes from slicer-core and oblique, anisotropic test grids."""
from __future__ import annotations

import numpy as np
import pytest

from NeuroRelevanceLib.geometry import Grid


def pytest_configure(config: pytest.Config) -> None:
    """Fail the run when a whole test module is skipped (see skip_guard.py)."""
    from skip_guard import ALLOWED, SkipGuard

    config.pluginmanager.register(SkipGuard(ALLOWED), "neurorelevance-skip-guard")


def oblique_grid(shape_kji=(7, 9, 11), spacing=(0.8, 1.3, 2.9),
                 origin=(-31.5, 17.25, 40.0), angles=(0.3, -0.2, 0.45)) -> Grid:
    """An anisotropic grid rotated about all three axes with an off-centre origin."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return Grid.from_parts(shape_kji, spacing, origin, rz @ ry @ rx)


@pytest.fixture
def grid() -> Grid:
    return oblique_grid()


@pytest.fixture
def scene():
    slicer = pytest.importorskip("slicer")
    return slicer.vtkMRMLScene()


@pytest.fixture
def views(scene):
    from NeuroRelevanceLib.mrml import SliceViews

    return SliceViews(scene, size=(96, 96))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread is much faster than several on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def node_count(scene) -> int:
    return scene.GetNumberOfNodes()


@pytest.fixture(scope="session")
def batch_inputs(tmp_path_factory):
    """A tiny model card and a synthetic 6-subject cohort at 8 mm with its table (batch tests)."""
    from batch_helpers import demo_cohort, tiny_card

    folder = tmp_path_factory.mktemp("batch-inputs")
    return tiny_card(folder / "model"), demo_cohort(folder / "cohort", 6)
