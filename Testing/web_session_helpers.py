"""Shared pieces of the web-session tests: panel values, oblique NIfTI files, uploads, fixtures."""

import collections
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib.geometry import nibabel_to_kji
from NeuroRelevanceLib.logic import RUN_KEY
from NeuroRelevanceLib.web.files import FileGate
from NeuroRelevanceLib.web.session import WebSession

slicer = pytest.importorskip("slicer")

ATLAS = "DesikanKilliany"
SHAPE_KJI = (9, 10, 12)


def panel_values(**changes) -> dict:
    """The values the page sends (the same keys as ``RelevanceWebApp.values``)."""
    values = dict(method="lrp", preset="alpha1-beta0", target="AD", filter_type="none",
                  filter_low=0.0, filter_high=1.0, filter_placement="input", opacity=0.6,
                  threshold=0.05, positive_only=False, atlas=ATLAS, epsilon=1e-6, gamma=0.25,
                  alpha=1.0, min_overlap=0.2)
    values.update(changes)
    return values


def write_oblique_nifti(path: Path, dtype=np.float32, seed: int = 0):
    """An oblique, anisotropic NIfTI written by nibabel; returns (affine, voxels in KJI order)."""
    grid = oblique_grid(shape_kji=SHAPE_KJI)
    rng = np.random.default_rng(seed)
    data = (rng.normal(100, 30, size=grid.shape_ijk)).astype(dtype)
    image = nib.Nifti1Image(data, grid.ijk_to_ras)
    nib.save(image, str(path))
    reread = nib.load(str(path))
    return reread.affine, nibabel_to_kji(np.asanyarray(reread.dataobj))


def write_brain_nifti(path: Path, seed: int = 0) -> None:
    """A held-out synthetic brain of ad_cnn's cohort at 4 mm (in the card's template space: a run takes it)."""
    from NeuroRelevanceLib.demo import synthesize_subject
    from NeuroRelevanceLib.pretrained import model_card_path
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    subject = synthesize_subject(150 + seed, 75.0, "AD", **{**generator_options(model_card_path("ad_cnn")),
                                                             "spacing": 4.0})
    nib.save(nib.Nifti1Image(np.ascontiguousarray(subject.image.transpose(2, 1, 0)), subject.grid.ijk_to_ras),
             str(path))


def upload_item(path: Path, name: str | None = None) -> dict:
    content = path.read_bytes()
    return {"name": name or path.name, "content": content, "size": len(content)}


def run_nodes(scene) -> list:
    found = []
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node.GetAttribute(RUN_KEY):
            found.append(node)
    return found


def census(scene) -> collections.Counter:
    return collections.Counter(scene.GetNthNode(i).GetClassName()
                               for i in range(scene.GetNumberOfNodes()))


@pytest.fixture(name="root")
def root_fixture(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture(name="session")
def session_fixture(scene, root):
    web = WebSession(scene, FileGate([root], max_upload=64 * 1024))
    yield web
    web.close()
