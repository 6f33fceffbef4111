"""Batch inputs: every scan format reads to the same voxels and geometry; cohort tables; bad inputs."""
from __future__ import annotations

import json
import locale

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import oblique_grid
from NeuroRelevanceLib.batch import read_scan, read_subjects
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import array_to_sitk
from NeuroRelevanceLib.nifti import write_nifti


@pytest.fixture(scope="module")
def volume():
    """An int16 volume on an oblique, anisotropic grid (KJI) with values that differ per voxel."""
    grid = oblique_grid(shape_kji=(5, 6, 7), spacing=(0.9, 1.4, 2.5))
    values = (np.arange(np.prod(grid.shape_kji)).reshape(grid.shape_kji) * 7 % 1000 - 300).astype(np.int16)
    return values, grid


def write_dicom_series(folder, values, grid, series="1.2.826.0.1.3680043.2.1125.42.1", prefix="slice") -> None:
    """Write a KJI volume as a DICOM series (one file per k slice) with SimpleITK.

    GDCM's writer leaves the process's LC_CTYPE at "C" (then Python reads text files as ASCII): the
    locale is put back afterwards. Reading series (the product's side) leaves it alone.
    """
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        _write_series(folder, values, grid, series, prefix)
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


def _write_series(folder, values, grid, series, prefix) -> None:
    folder.mkdir(exist_ok=True)
    image = array_to_sitk(values, grid)
    d = image.GetDirection()
    orientation = "\\".join(f"{v:.8f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        for tag, value in (("0020|000e", series), ("0020|0037", orientation), ("0008|0060", "MR"),
                           ("0020|0013", str(k + 1)), ("0008|103e", "batch test"),
                           ("0020|0032", "\\".join(f"{v:.6f}" for v in
                                                   image.TransformIndexToPhysicalPoint((0, 0, k))))):
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(piece)


def test_nifti_nrrd_metaimage_and_dicom_series_read_the_same_voxels_and_grid(tmp_path, volume):
    values, grid = volume
    write_nifti(tmp_path / "scan.nii.gz", values, grid)
    for name in ("scan.nrrd", "scan.mha", "scan.mhd"):
        sitk.WriteImage(array_to_sitk(values, grid), str(tmp_path / name))
    write_dicom_series(tmp_path / "dicom", values, grid)
    write_dicom_series(tmp_path / "dicom", values[::-1].copy(), grid, series="1.2.826.0.1.3680043.2.1125.42.9",
                       prefix="other")  # a second series in the folder: one of its files picks the series
    assert np.array_equal(read_scan(tmp_path / "dicom" / "other002.dcm")[0], values[::-1].astype(np.float32))
    before = locale.setlocale(locale.LC_CTYPE)
    for source in ("scan.nii.gz", "scan.nrrd", "scan.mha", "scan.mhd", "dicom/slice003.dcm"):
        array, read_grid = read_scan(tmp_path / source)
        assert array.dtype == np.float32 and array.shape == grid.shape_kji, source
        assert np.array_equal(array, values.astype(np.float32)), source
        assert read_grid.same_as(grid, atol=1e-3), (source, read_grid.ijk_to_ras, grid.ijk_to_ras)
    assert locale.setlocale(locale.LC_CTYPE) == before  # reading changes no process-wide setting


def test_unreadable_and_non_3d_inputs_are_refused_with_the_cause(tmp_path, volume):
    values, grid = volume
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image at all")
    (tmp_path / "notes.txt").write_text("hello")
    flat = sitk.GetImageFromArray(np.zeros((4, 5), np.float32))
    sitk.WriteImage(flat, str(tmp_path / "flat.mha"))
    vector = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.float32), isVector=True)
    sitk.WriteImage(vector, str(tmp_path / "rgb.nrrd"))
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), str(tmp_path / "series.nii.gz"))
    (tmp_path / "empty").mkdir()
    write_dicom_series(tmp_path / "two", values, grid)
    write_dicom_series(tmp_path / "two", values, grid, series="1.2.826.0.1.3680043.2.1125.42.2", prefix="other")
    cases = {"missing.nii.gz": "no such", "broken.nii.gz": "not a readable", "notes.txt": "format",
             "flat.mha": "2d", "rgb.nrrd": "component", "series.nii.gz": "4d", "empty": "no dicom",
             "two": "2 dicom series"}
    for name, words in cases.items():
        with pytest.raises(InputError) as info:
            read_scan(tmp_path / name)
        assert words in str(info.value).lower(), (name, str(info.value))
        assert name.split(".")[0] in str(info.value), (name, str(info.value))


def _write_scans(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    grid = oblique_grid(shape_kji=(4, 4, 4))
    for name in names:
        write_nifti(folder / name, np.ones(grid.shape_kji, np.float32), grid)


def test_a_table_gives_ids_groups_covariates_and_paths_relative_to_itself(tmp_path):
    _write_scans(tmp_path / "scans", ["a.nii.gz", "b.nii.gz"])
    (tmp_path / "cohort.csv").write_text("id,path,group,age,site\ns1,scans/a.nii.gz,AD,71.5,x\n"
                                         "s2,scans/b.nii.gz,control,64,y\n")
    subjects = read_subjects(tmp_path / "cohort.csv", ("T1",))
    assert [s.id for s in subjects] == ["s1", "s2"]
    assert [s.group for s in subjects] == ["AD", "control"]
    assert subjects[0].covariates == {"age": 71.5, "site": "x"}
    assert subjects[1].channels == [tmp_path / "scans" / "b.nii.gz"]
    (tmp_path / "cohort.tsv").write_text("path\tgroup\nscans/a.nii.gz\tAD\n")
    (only,) = read_subjects(tmp_path / "cohort.tsv", ("T1",))
    assert only.id == "a" and only.group == "AD" and only.covariates == {}


def test_ids_come_from_file_names_and_stay_unique(tmp_path):
    _write_scans(tmp_path / "sub-01" / "anat", ["T1w.nii.gz"])
    _write_scans(tmp_path / "sub-02" / "anat", ["T1w.nii.gz"])
    subjects = read_subjects([tmp_path / "sub-01/anat/T1w.nii.gz", tmp_path / "sub-02/anat/T1w.nii.gz"], ("T1",))
    assert [s.id for s in subjects] == ["sub-01_anat_T1w", "sub-02_anat_T1w"]
    assert all(s.group is None for s in subjects)
    with pytest.raises(InputError, match="twice"):
        read_subjects([tmp_path / "sub-01/anat/T1w.nii.gz"] * 2, ("T1",))


def test_table_errors_name_the_column_or_row_and_the_fix(tmp_path):
    bad = {"nopath.csv": ("id,file\ns1,a.nii.gz\n", "path"),
           "dup.csv": ("id,path\ns1,a.nii.gz\ns1,b.nii.gz\n", "s1"),
           "empty.csv": ("id,path\n", "no subjects"),
           "slash.csv": ("id,path\n../evil,a.nii.gz\n", "../evil")}
    for name, (text, words) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError) as info:
            read_subjects(tmp_path / name, ("T1",))
        assert words in str(info.value), (name, str(info.value))
    with pytest.raises(InputError, match="No such"):
        read_subjects(tmp_path / "missing.csv", ("T1",))


def test_multichannel_cards_take_one_file_per_channel(tmp_path):
    _write_scans(tmp_path, ["t1.nii.gz", "flair.nii.gz"])
    (tmp_path / "mc.csv").write_text("id,path_T1,path_FLAIR\ns1,t1.nii.gz,flair.nii.gz\n")
    (subject,) = read_subjects(tmp_path / "mc.csv", ("T1", "FLAIR"))
    assert subject.channels == [tmp_path / "t1.nii.gz", tmp_path / "flair.nii.gz"]
    (listed,) = read_subjects([f"{tmp_path / 't1.nii.gz'},{tmp_path / 'flair.nii.gz'}"], ("T1", "FLAIR"))
    assert listed.channels == subject.channels and listed.id == "t1"
    (tmp_path / "one.csv").write_text("id,path\ns1,t1.nii.gz\n")
    with pytest.raises(InputError, match="path_FLAIR"):
        read_subjects(tmp_path / "one.csv", ("T1", "FLAIR"))
    with pytest.raises(InputError, match="2 channel"):
        read_subjects([tmp_path / "t1.nii.gz"], ("T1", "FLAIR"))


def test_scene_volumes_are_subjects_too(scene):
    from NeuroRelevanceLib import mrml

    grid = oblique_grid(shape_kji=(4, 5, 6))
    values = np.random.default_rng(0).normal(size=grid.shape_kji).astype(np.float32)
    node = mrml.array_to_volume(scene, values, grid, "patient 7 T1")
    (subject,) = read_subjects([node], ("T1",))
    array, read_grid = subject.channels[0]
    assert subject.id == "patient_7_T1" and subject.names == ["patient 7 T1"]
    assert np.array_equal(array, values) and read_grid.same_as(grid)
    json.dumps(subject.describe())  # plain data for the summary
