"""explain_cohort in this process: per-subject outputs, group maps and gain, bad subjects, resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP, read_map, single_scan_map, tiny_card
from NeuroRelevanceLib.batch import explain_cohort
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.nifti import read_nifti, write_nifti

OPTIONS = dict(atlases=(ATLAS,), min_overlap=MIN_OVERLAP, reference_group="control", target="AD", device="cpu")


@pytest.fixture(scope="module")
def inputs(batch_inputs):
    return batch_inputs


@pytest.fixture(scope="module")
def done(inputs, tmp_path_factory, one_torch_thread):
    card, table = inputs
    out = tmp_path_factory.mktemp("batch-run") / "out"
    return explain_cohort(table, card, out, **OPTIONS)


def _row(result, subject_id):
    return result.subjects.set_index("id").loc[subject_id]


def test_every_subject_is_explained_and_its_map_is_the_single_scan_map(done, inputs):
    card, table = inputs
    cohort = pd.read_csv(table)
    assert list(done.subjects["status"]) == ["done"] * len(cohort)
    for subject in cohort.itertuples():
        row = _row(done, subject.id)
        written, grid = read_nifti(row["relevance"])
        expected = single_scan_map(card, subject.path, target=1)  # OPTIONS' target "AD"
        scan_grid = read_nifti(subject.path)[1]
        assert grid.same_as(scan_grid)
        assert np.abs(expected).max() > 0
        assert np.allclose(written, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max()), subject.id


def test_each_subject_has_a_sidecar_record_a_region_table_and_a_labelled_png(done, inputs):
    card, table = inputs
    row = _row(done, "sub-0000")
    sidecar = json.loads(Path(str(row["relevance"]).replace(".nii.gz", ".json")).read_text())
    record = sidecar["record"]
    assert sidecar["values"] == "raw relevance"
    assert (record["method"], record["preset"], record["model"]["name"]) == ("lrp", "epsilon-plus", "tiny-batch")
    assert record["inputs"] == [{"channel": "T1", "volume": "sub-0000_T1w.nii.gz"}]
    from NeuroRelevanceLib.regions import read_csv

    regions = read_csv(row[f"regions_{ATLAS}"])
    assert regions.attrs["atlas"] == ATLAS and regions.attrs["provenance"]["model"]["name"] == "tiny-batch"
    from matplotlib.image import imread

    png = imread(row["png"])
    assert png.shape[0] > 200 and png.shape[1] > 500 and png[..., :3].std() > 0.05


def test_group_mean_and_std_maps_equal_numpy_over_the_written_maps(done):
    subjects = done.subjects
    groups = {"all": subjects, **{f"group-{g}": subjects[subjects["group"] == g] for g in ("AD", "control")}}
    for name, members in groups.items():
        stack = np.stack([read_map(p)[0] for p in members["relevance"]])
        mean, affine = read_map(done.maps[f"{name}_mean"])
        std, _ = read_map(done.maps[f"{name}_std"])
        assert np.allclose(affine, read_map(members["relevance"].iloc[0])[1])
        assert np.allclose(mean, stack.mean(0), rtol=1e-5, atol=1e-7 * np.abs(stack).max()), name
        assert np.allclose(std, stack.std(0, ddof=1), rtol=1e-4, atol=1e-7 * np.abs(stack).max()), name
        sidecar = json.loads(Path(str(done.maps[f"{name}_mean"]).replace(".nii.gz", ".json")).read_text())
        assert sidecar["subjects"] == list(members["id"])


def test_group_gain_equals_numpy_over_the_subject_tables(done):
    from NeuroRelevanceLib.regions import read_csv

    subjects = done.subjects
    sums = {}
    for g in ("AD", "control"):
        tables = [read_csv(p).set_index("label")["sum_pos"]   # the gain is on positive relevance (seed 004's R+)
                  for p in subjects[subjects["group"] == g][f"regions_{ATLAS}"]]
        sums[g] = pd.concat(tables, axis=1).mean(axis=1)
    gain = done.gain[(ATLAS, "AD vs control")].set_index("label")
    assert set(gain["comparison"]) == {"AD vs control"}
    expected = sums["AD"] / sums["control"]
    labels = gain.index[np.isfinite(gain["gain"])]
    assert len(labels) > 10
    assert np.allclose(gain.loc[labels, "gain"], expected.loc[labels], rtol=1e-6)
    assert done.files[f"gain_{ATLAS}_AD-vs-control"].name == f"gain_{ATLAS}_AD-vs-control.csv"


def test_subjects_by_regions_table_lists_every_subject_once(done):
    from NeuroRelevanceLib.regions import read_csv

    wide = done.regions[ATLAS].set_index("id")
    assert list(wide.index) == list(done.subjects["id"])
    assert {"group", "age"} <= set(wide.columns)
    first = read_csv(_row(done, "sub-0001")[f"regions_{ATLAS}"])
    for region in first.head(5).itertuples():
        assert np.isclose(wide.loc["sub-0001", region.name], region.density, equal_nan=True)


def test_bad_subjects_are_reported_and_skipped_and_the_rest_completes(inputs, tmp_path, one_torch_thread):
    card, table = inputs
    cohort = pd.read_csv(table).head(2)
    good, grid = read_nifti(cohort["path"][0])
    (tmp_path / "broken.nii.gz").write_bytes(b"\x00" * 100)
    holes = good.copy()
    holes[3, 4, 5] = np.nan
    write_nifti(tmp_path / "nan.nii.gz", holes, grid)
    far = grid.ijk_to_ras.copy()
    far[:3, 3] += 5000.0  # the scan lies nowhere near the model's template grid
    from NeuroRelevanceLib.geometry import Grid

    write_nifti(tmp_path / "far.nii.gz", good, Grid(grid.shape_kji, far))
    bad = pd.DataFrame({"id": ["broken", "nan", "far", "missing"],
                        "path": [str(tmp_path / n) for n in ("broken.nii.gz", "nan.nii.gz", "far.nii.gz",
                                                              "missing.nii.gz")],
                        "group": "AD", "age": 70})
    mixed = pd.concat([cohort, bad], ignore_index=True)
    result = explain_cohort(mixed, card, tmp_path / "out", **{**OPTIONS, "png": False})
    status = result.subjects.set_index("id")
    assert list(status.loc[cohort["id"], "status"]) == ["done", "done"]
    reasons = {"broken": "not a readable", "nan": "nan", "far": "does not overlap", "missing": "no such"}
    for subject_id, words in reasons.items():
        assert status.loc[subject_id, "status"] == "failed"
        assert words in status.loc[subject_id, "reason"].lower(), status.loc[subject_id, "reason"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 4}
    assert {f["id"] for f in summary["failed"]} == set(reasons)
    assert json.loads(Path(str(result.maps["all_mean"]).replace(".nii.gz", ".json")).read_text())["subjects"] == \
        list(cohort["id"])
    assert not (tmp_path / "out" / "subjects" / "nan").exists() or \
        not any((tmp_path / "out" / "subjects" / "nan").iterdir())


def test_a_rerun_skips_complete_subjects_and_refuses_other_settings(inputs, tmp_path, one_torch_thread):
    card, table = inputs
    small = pd.read_csv(table).head(3)
    out = tmp_path / "out"
    first = explain_cohort(small, card, out, **{**OPTIONS, "png": False})
    stamps = {p: p.stat().st_mtime_ns for p in (out / "subjects").rglob("*") if p.is_file()}
    again = explain_cohort(small, card, out, **{**OPTIONS, "png": False})
    assert list(again.subjects["status"]) == ["skipped"] * 3
    assert {p: p.stat().st_mtime_ns for p in (out / "subjects").rglob("*") if p.is_file()} == stamps
    assert np.array_equal(read_map(again.maps["all_mean"])[0], read_map(first.maps["all_mean"])[0])
    with pytest.raises(InputError, match="overwrite") as info:
        explain_cohort(small, card, out, **{**OPTIONS, "png": False, "preset": "alpha1-beta0"})
    assert "preset" in str(info.value)
    redone = explain_cohort(small, card, out, **{**OPTIONS, "png": False, "preset": "alpha1-beta0",
                                                 "overwrite": True})
    assert list(redone.subjects["status"]) == ["done"] * 3
    record = json.loads(Path(str(_row(redone, "sub-0000")["relevance"]).replace(".nii.gz", ".json")).read_text())
    assert record["record"]["preset"] == "alpha1-beta0"


def test_an_interrupted_run_resumes_without_duplicates_or_half_written_files(inputs, tmp_path, one_torch_thread):
    card, table = inputs
    out = tmp_path / "out"
    seen = []

    def stop_after_two(result):
        seen.append(result["id"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explain_cohort(table, card, out, progress=stop_after_two, **{**OPTIONS, "png": False})
    markers = sorted(p.parent.name for p in (out / "subjects").rglob("*_done.json"))
    assert markers == sorted(seen)
    # a worker killed while writing leaves a temporary file behind: the re-run must not count or keep it
    (out / "subjects" / "sub-0005").mkdir(parents=True, exist_ok=True)
    (out / "subjects" / "sub-0005" / ".tmp-123-sub-0005_relevance.nii.gz").write_bytes(b"half")
    result = explain_cohort(table, card, out, **{**OPTIONS, "png": False})
    status = result.subjects.set_index("id")["status"]
    assert sorted(status[status == "skipped"].index) == sorted(seen)
    assert (status != "failed").all() and len(status) == 6
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    assert len(list((out / "subjects").rglob("*_done.json"))) == 6
    long = pd.read_csv(result.files[f"regions_{ATLAS}_long"], comment="#")
    assert long.groupby("id")["label"].apply(lambda s: s.is_unique).all()
    assert sorted(long["id"].unique()) == sorted(status.index)


def test_multichannel_subjects_get_one_map_per_channel_and_their_sum(tmp_path, one_torch_thread, inputs):
    _, table = inputs
    card = tiny_card(tmp_path / "model2", channels=("T1", "FLAIR"), name="tiny-two")
    cohort = pd.read_csv(table).head(2)
    for row in cohort.itertuples():
        array, grid = read_nifti(row.path)
        write_nifti(tmp_path / f"{row.id}_FLAIR.nii.gz", np.sqrt(np.abs(array)), grid)
    two = pd.DataFrame({"id": cohort["id"], "path_T1": cohort["path"],
                        "path_FLAIR": [str(tmp_path / f"{i}_FLAIR.nii.gz") for i in cohort["id"]]})
    result = explain_cohort(two, card, tmp_path / "out", atlases=(), png=False, device="cpu")
    row = _row(result, "sub-0000")
    t1, flair, total = (read_map(row[k])[0] for k in ("relevance_T1", "relevance_FLAIR", "relevance"))
    assert np.abs(t1).max() > 0 and np.abs(flair).max() > 0
    assert np.allclose(total, t1 + flair, atol=1e-6 * np.abs(total).max())


def test_atomic_writes_leave_the_old_file_when_writing_fails(tmp_path, grid):
    from NeuroRelevanceLib.atomic import atomic_path, remove_stale
    from NeuroRelevanceLib.heatmap_files import write_heatmap

    target = tmp_path / "map.nii.gz"
    write_heatmap(target, np.ones(grid.shape_kji, np.float32), grid, None)
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half a file")
        raise RuntimeError("killed while writing")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.json", "map.nii.gz"]
    # the heatmap writer stages the map and its sidecar: when the sidecar cannot be written, the old map stays
    other = tmp_path / "other.nii.gz"
    write_heatmap(other, np.ones(grid.shape_kji, np.float32), grid, None)
    kept = other.read_bytes()
    (tmp_path / "other.json").unlink()
    (tmp_path / "other.json").mkdir()
    with pytest.raises(OSError):
        write_heatmap(other, np.full(grid.shape_kji, 2.0, np.float32), grid, None)
    assert other.read_bytes() == kept
    (tmp_path / "other.json").rmdir()
    other.unlink()
    (tmp_path / ".tmp-1-abc-map.nii.gz").write_bytes(b"x")
    assert remove_stale(tmp_path) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["map.json", "map.nii.gz"]


def test_scene_volumes_from_slicers_console_give_the_same_maps_as_their_files(inputs, tmp_path, scene,
                                                                               one_torch_thread):
    from NeuroRelevanceLib import mrml

    card, table = inputs
    cohort = pd.read_csv(table).head(2)
    nodes = [mrml.array_to_volume(scene, *read_nifti(p), f"{i} T1")
             for i, p in zip(cohort["id"], cohort["path"], strict=True)]
    before = scene.GetNumberOfNodes()
    result = explain_cohort(nodes, card, tmp_path / "out", atlases=(), png=False, device="cpu")
    assert scene.GetNumberOfNodes() == before  # the scene is read, never changed
    assert list(result.subjects["id"]) == [f"{i}_T1" for i in cohort["id"]]
    for row, path in zip(result.subjects.itertuples(), cohort["path"], strict=True):
        assert np.allclose(read_nifti(row.relevance)[0], single_scan_map(card, path), rtol=1e-5, atol=1e-12)
    with pytest.raises(InputError, match="not both"):
        explain_cohort(nodes, card, tmp_path / "other", executor=object(), workers=2)
