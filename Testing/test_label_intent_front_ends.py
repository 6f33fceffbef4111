"""A NIfTI whose header declares labels (intent_code 1002 NIFTI_INTENT_LABEL, 1003 NEURONAME) is refused as a scan
by every front end that reads a scan file: explain, compare, the web page (a server file and an upload), the cohort
pipeline (with and without a card) and the MRML reader; the same file still reads as an atlas. Nothing is written
and the file is unchanged."""
from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.errors import InputError
from reading_helpers import tiny_card

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (24, 20, 18)  # nibabel (i, j, k) order


def _labels_file(folder: Path, intent: str) -> Path:
    """A brain-sized float volume (an intensity ramp) whose header says it holds labels."""
    rng = np.random.default_rng(0)
    values = np.round(np.indices(SHAPE).sum(0) * 10 + rng.normal(0, 3, SHAPE)).astype(np.float32)
    image = nib.Nifti1Image(values, np.diag([4.0, 4.0, 4.0, 1.0]))
    image.header.set_intent(intent)
    path = folder / "data" / "aseg.nii.gz"
    path.parent.mkdir(exist_ok=True)
    nib.save(image, path)
    return path


def _explain(path: Path, tmp: Path, capsys) -> None:
    from NeuroRelevanceLib.cli import main

    code = main(["explain", "--model", str(tiny_card(tmp)), str(path), "--output", str(tmp / "out"),
                 "--atlas", "none", "--no-png", "--device", "cpu"])
    _exit(code, capsys)


def _compare(path: Path, tmp: Path, capsys) -> None:
    from NeuroRelevanceLib.cli import main

    _exit(main(["compare", str(path), "--model", str(tiny_card(tmp)), "--device", "cpu",
                "--csv", str(tmp / "out" / "table.csv")]), capsys)


def _exit(code: int, capsys) -> None:
    err = capsys.readouterr().err
    if code != 0:
        raise InputError(err)


def _web(path: Path, tmp: Path, capsys, upload: bool = False) -> None:
    import slicer

    from NeuroRelevanceLib.web.files import FileGate
    from NeuroRelevanceLib.web.session import WebSession

    scene = slicer.vtkMRMLScene()
    session = WebSession(scene, FileGate([path.parent], max_upload=1 << 20))
    try:
        if upload:
            receiver = session.receive_upload(path.name)
            receiver.write(path.read_bytes())
            session.load_received(receiver)
        else:
            session.load_server_file(str(path))
    finally:
        nodes = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
        session.close()
        assert nodes == 0  # refused before touching the scene


def _cohort(path: Path, tmp: Path, capsys, card: bool = True) -> None:
    from NeuroRelevanceLib.cohort import decompose_cohort
    from NeuroRelevanceLib.models import load_model

    loaded = load_model(tiny_card(tmp), device="cpu")
    scans = [path] + [path.with_name(f"s{n}.nii.gz") for n in range(5)]
    for other in scans[1:]:
        image = nib.load(path)
        clean = nib.Nifti1Image(np.asarray(image.dataobj), image.affine)  # the same voxels, no intent
        nib.save(clean, other)
    decompose_cohort(scans[::-1], [50.0 + n for n in range(6)], loaded.model, card=loaded.card if card else None,
                     rank=(2, 2), grid=False, sparsity_fractions=(0.0,), alphas=(1.0,), n_iter_max=5, progress=None)


def _mrml(path: Path, tmp: Path, capsys) -> None:
    import slicer

    from NeuroRelevanceLib.mrml import read_volume

    read_volume(slicer.vtkMRMLScene(), path)


FRONT_ENDS = {"explain": _explain, "compare": _compare, "web server file": _web,
              "web upload": lambda p, t, c: _web(p, t, c, upload=True), "cohort with card": _cohort,
              "cohort without card": lambda p, t, c: _cohort(p, t, c, card=False), "MRML read_volume": _mrml}


@pytest.mark.parametrize("intent", ["label", "neuroname"])
@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_every_front_end_refuses_a_label_intent_as_a_scan(tmp_path, capsys, front_end, intent):
    path = _labels_file(tmp_path, intent)
    assert int(nib.load(path).header["intent_code"]) in (1002, 1003)
    before = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(InputError) as info:
        FRONT_ENDS[front_end](path, tmp_path, capsys)
    text = str(info.value)
    assert "aseg.nii.gz is a label map" in text and "atlas" in text, text
    assert hashlib.md5(path.read_bytes()).hexdigest() == before
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_the_same_file_reads_as_an_atlas(tmp_path):
    from NeuroRelevanceLib.regions.atlas import load_label_map

    path = _labels_file(tmp_path, "label")
    atlas = load_label_map(path)
    assert atlas.grid.shape_kji == SHAPE[::-1]


def test_compare_notes_a_scan_that_only_looks_like_a_label_map(tmp_path, capsys):
    """No intent in the header: compare runs, and says (as explain does) that the scan looks like a label map."""
    from NeuroRelevanceLib.cli import main

    i, j, k = np.indices(SHAPE)
    parcels = (1 + i // 6 + 4 * (j // 6) + 16 * (k // 6)).astype(np.int16)  # blocky regions, numbered
    nib.save(nib.Nifti1Image(parcels, np.diag([4.0, 4.0, 4.0, 1.0])), tmp_path / "parcels.nii.gz")
    code = main(["compare", str(tmp_path / "parcels.nii.gz"), "--model", str(tiny_card(tmp_path)), "--device", "cpu",
                 "--methods", "gradient", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 0 and "'parcels.nii.gz' looks like a label map" in err, err
