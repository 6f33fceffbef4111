"""A NIfTI whose qform and sform disagree (both set) is read at one place by nibabel (the sform) and at
another by ITK and 3D Slicer (the qform): a map made from it would sit millimetres off its scan in Slicer.
Every entry point refuses it with the difference (mm, degrees) and the fix; files that agree, or set only
one of the two, are read, and then nibabel and the MRML (ITK) reader put every voxel at the same place."""
import hashlib

import nibabel as nib
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import kji_to_nibabel
from reading_helpers import tiny_card

GRID = oblique_grid((14, 18, 16), (1.1, 1.3, 2.4))


def _scan() -> np.ndarray:
    """An int16 'brain' (noise on a smooth ellipsoid), nibabel order."""
    rng = np.random.default_rng(0)
    k, j, i = np.indices(GRID.shape_kji)
    r = np.sqrt(((i - 7.5) / 7) ** 2 + ((j - 8.5) / 8) ** 2 + ((k - 6.5) / 6) ** 2)
    values = np.clip(1.2 - r, 0, None) * 800 + rng.normal(0, 20, r.shape) * (r < 1.2)
    return kji_to_nibabel(values.astype(np.int16))


def _rotation(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def _write(path, qform=None, sform=None, qcode=1, scode=2):
    image = nib.Nifti1Image(_scan(), GRID.ijk_to_ras)
    image.set_sform(sform, scode if sform is not None else 0)
    image.set_qform(qform, qcode if qform is not None else 0)
    nib.save(image, path)
    return path


SHIFTED = GRID.ijk_to_ras.copy()
SHIFTED[:3, 3] += [10.0, 0.0, 0.0]  # qform 10 mm to the right of the sform
DISAGREE = {"shifted 10 mm": (SHIFTED, "10"), "rotated 3°": (_rotation(3.0) @ GRID.ijk_to_ras, "3")}


def _entry_points():
    from NeuroRelevanceLib.batch.scans import read_scan
    from NeuroRelevanceLib.nifti import from_nibabel, read_nifti, read_nifti_grid

    def mrml_reader(path):
        import slicer

        from NeuroRelevanceLib.mrml import read_volume

        return read_volume(slicer.vtkMRMLScene(), path)

    return {"read_nifti": read_nifti, "read_nifti_grid": read_nifti_grid, "batch read_scan": read_scan,
            "MRML read_volume (ITK)": mrml_reader,
            "a nibabel image (regions, heatmaps)": lambda path: from_nibabel(nib.load(path), what=str(path))}


@pytest.mark.parametrize("case", list(DISAGREE))
@pytest.mark.parametrize("entry", list(_entry_points()))
def test_every_reader_refuses_disagreeing_qform_and_sform(tmp_path, case, entry):
    qform, amount = DISAGREE[case]
    path = _write(tmp_path / "scan.nii.gz", qform=qform, sform=GRID.ijk_to_ras)
    before = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(InputError) as info:
        _entry_points()[entry](path)
    text = str(info.value)
    assert "qform" in text and "sform" in text and "scan.nii.gz" in text and "\n" not in text
    assert amount in text and ("mm" in text if "mm" in case else "°" in text)
    assert "set_qform(img.get_sform())" in text and "fslorient" in text  # the fix
    assert hashlib.md5(path.read_bytes()).hexdigest() == before


def test_the_command_line_refuses_it_and_writes_nothing(tmp_path, capsys):
    from NeuroRelevanceLib.cli import main

    path = _write(tmp_path / "scan.nii.gz", qform=SHIFTED, sform=GRID.ijk_to_ras)
    before = hashlib.md5(path.read_bytes()).hexdigest()
    code = main(["explain", "--model", str(tiny_card(tmp_path)), str(path), "--output", str(tmp_path / "out"),
                 "--atlas", "none", "--no-png", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "qform" in err and "sform" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.nii.gz"))
    assert hashlib.md5(path.read_bytes()).hexdigest() == before


ACCEPTED = {
    "equal": dict(qform=GRID.ijk_to_ras, sform=GRID.ijk_to_ras),
    "qform only": dict(qform=GRID.ijk_to_ras, sform=None),
    "sform only": dict(qform=None, sform=GRID.ijk_to_ras),
    "0.01 mm apart": dict(qform=GRID.ijk_to_ras + np.pad(np.full((3, 1), 0.01), ((0, 1), (3, 0))),
                          sform=GRID.ijk_to_ras),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_agreeing_headers_are_read_at_the_same_place_by_nibabel_and_mrml(tmp_path, case):
    import slicer
    import vtk

    from NeuroRelevanceLib.mrml import read_volume, volume_to_array
    from NeuroRelevanceLib.nifti import read_nifti

    path = _write(tmp_path / "scan.nii.gz", **ACCEPTED[case])
    array, grid = read_nifti(path)
    node = read_volume(slicer.vtkMRMLScene(), path)
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    itk = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    np.testing.assert_allclose(grid.ijk_to_ras, itk, atol=0.02)  # ITK reads float32 quaternions
    np.testing.assert_allclose(grid.ijk_to_ras, GRID.ijk_to_ras, atol=0.02)
    assert np.array_equal(volume_to_array(node)[0], array)


SHEAR = np.eye(4)
SHEAR[0, 1] = 0.15  # the i axis leans towards j: no qform (a rotation, sizes and a flip) can hold it
FIXABLE = {"qform shifted 10 mm": dict(qform=SHIFTED, sform=GRID.ijk_to_ras),
           "qform rotated 3°": dict(qform=_rotation(3.0) @ GRID.ijk_to_ras, sform=GRID.ijk_to_ras),
           "sheared sform (0.15)": dict(qform=GRID.ijk_to_ras, sform=GRID.ijk_to_ras @ SHEAR)}


@pytest.mark.parametrize("case", list(FIXABLE))
def test_the_nibabel_fix_the_refusal_names_makes_the_file_readable(tmp_path, case):
    """The refusal's nibabel line, run as written, gives a file that every reader accepts: for a sheared sform it
    must not be set_qform(get_sform()) (the qform would still differ; fslorient -copysform2qform likewise)."""
    import re

    from NeuroRelevanceLib.nifti import read_nifti

    path = _write(tmp_path / "scan.nii.gz", **FIXABLE[case])
    with pytest.raises(InputError) as info:
        read_nifti(path)
    text = str(info.value)
    fix = re.search(r"img = nib\.load\(path\);.*?nib\.save\(img, new_path\)", text)
    assert fix, text
    new_path = tmp_path / "fixed.nii.gz"
    exec(fix.group(0), {"nib": nib, "path": str(path), "new_path": str(new_path)})  # noqa: S102 - the message's own line
    for read in _entry_points().values():
        read(new_path)  # no refusal
    if "shear" in case:
        assert "sheared" in text and "set_qform(img.get_sform())" not in text and "resample" in text


def _sform_only_with_pixdim(path, zooms):
    """An sform-only file (qform code 0) whose header pixdim says other voxel sizes than its sform: nibabel
    reads the sizes from the sform, ITK (Slicer) from pixdim, so the far corner lands elsewhere (trial 8)."""
    image = nib.Nifti1Image(_scan(), None)
    image.set_sform(GRID.ijk_to_ras, code=2)
    image.header["qform_code"] = 0
    image.header.set_zooms(zooms)
    nib.save(image, path)
    return path


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_an_sform_only_file_whose_pixdim_disagrees_is_refused(tmp_path, entry):
    path = _sform_only_with_pixdim(tmp_path / "scan.nii.gz", (7.0, 7.0, 7.0))
    before = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(InputError) as info:
        _entry_points()[entry](path)
    text = str(info.value)
    assert "pixdim" in text and "sform" in text and "scan.nii.gz" in text and "7" in text
    assert hashlib.md5(path.read_bytes()).hexdigest() == before


def test_an_sform_only_file_with_matching_pixdim_is_read_alike_and_the_fix_works(tmp_path):
    import re

    import slicer
    import vtk

    from NeuroRelevanceLib.mrml import read_volume
    from NeuroRelevanceLib.nifti import read_nifti

    sizes = tuple(np.linalg.norm(GRID.ijk_to_ras[:3, :3], axis=0))
    ok = _sform_only_with_pixdim(tmp_path / "ok.nii.gz", sizes)
    _, grid = read_nifti(ok)
    node = read_volume(slicer.vtkMRMLScene(), ok)
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    np.testing.assert_allclose(grid.ijk_to_ras, [[m.GetElement(r, c) for c in range(4)] for r in range(4)], atol=0.02)
    bad = _sform_only_with_pixdim(tmp_path / "bad.nii.gz", (1.0, 1.0, 1.0))
    with pytest.raises(InputError) as info:
        read_nifti(bad)
    fix = re.search(r"img = nib\.load\(path\);.*?nib\.save\(img, new_path\)", str(info.value))
    assert fix, str(info.value)
    new_path = tmp_path / "fixed.nii.gz"
    exec(fix.group(0), {"nib": nib, "path": str(bad), "new_path": str(new_path)})  # noqa: S102 - the message's own line
    for read in _entry_points().values():
        read(new_path)
    np.testing.assert_allclose(read_nifti(new_path)[1].ijk_to_ras, GRID.ijk_to_ras, atol=0.02)
