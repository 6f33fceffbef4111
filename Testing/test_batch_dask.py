"""explain_cohort on a real dask.distributed LocalCluster with two worker processes."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP, single_scan_map
from NeuroRelevanceLib.batch import DaskExecutor, explain_cohort
from NeuroRelevanceLib.nifti import read_nifti

pytest.importorskip("distributed")
OPTIONS = dict(atlases=(ATLAS,), min_overlap=MIN_OVERLAP, reference_group="control", device="cpu")


@pytest.fixture(scope="module")
def inputs(batch_inputs):
    return batch_inputs


@pytest.fixture(scope="module")
def cluster():
    """``--workers 2``: a LocalCluster of two single-threaded worker processes, shared by these tests."""
    executor = DaskExecutor(workers=2)
    yield executor
    executor.close()


def test_workers_give_the_single_scan_maps_and_load_the_model_once_each(cluster, inputs, tmp_path):
    card, table = inputs
    result = explain_cohort(table, card, tmp_path / "out", executor=cluster, **OPTIONS)
    subjects = result.subjects.set_index("id")
    assert (subjects["status"] == "done").all()
    for subject in pd.read_csv(table).head(3).itertuples():
        written, _ = read_nifti(subjects.loc[subject.id, "relevance"])
        expected = single_scan_map(card, subject.path)
        assert np.allclose(written, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max()), subject.id
    assert all(os.path.isfile(p) for p in subjects["png"])  # VTK renders inside the worker processes too
    workers = subjects.groupby("worker")["model_loads"].max()
    assert len(workers) == 2 and (workers == 1).all(), subjects[["worker", "model_loads"]]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["executor"].startswith("Dask")


def test_a_killed_worker_and_a_rerun_complete_the_cohort_without_duplicates(cluster, inputs, tmp_path):
    card, table = inputs
    out = tmp_path / "out"
    pids = cluster.client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = []

    def kill_once(result):
        if not killed:
            os.kill(victim, signal.SIGKILL)  # a worker dies in the middle of the cohort
            killed.append(victim)

    first = explain_cohort(table, card, out, executor=cluster, progress=kill_once, **{**OPTIONS, "png": False})
    assert killed
    second = explain_cohort(table, card, out, executor=cluster, **{**OPTIONS, "png": False})
    status = second.subjects.set_index("id")["status"]
    assert (status != "failed").all(), second.subjects[["id", "status", "reason"]]
    assert sorted(status.index) == sorted(pd.read_csv(table)["id"])
    done_first = set(first.subjects.loc[first.subjects["status"] == "done", "id"])
    assert set(status[status == "skipped"].index) == done_first
    assert len(list((out / "subjects").rglob("*_done.json"))) == 6
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    long = pd.read_csv(second.files[f"regions_{ATLAS}_long"], comment="#")
    assert len(long) == 6 * long["label"].nunique()


def test_a_scheduler_address_joins_the_running_cluster_from_the_command_line(cluster, inputs, tmp_path, capsys):
    from NeuroRelevanceLib.cli import main

    card, table = inputs
    scans = list(pd.read_csv(table)["path"][:2])
    code = main(["explain", *scans, "--model", str(card), "--output", str(tmp_path / "out"),
                 "--scheduler", cluster.client.scheduler.address, "--atlas", ATLAS,
                 "--min-overlap", str(MIN_OVERLAP), "--no-png", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 done" in captured.out and "Dask" in captured.out
    assert len(list((tmp_path / "out" / "subjects").rglob("*_done.json"))) == 2


def test_cohort_activations_collected_on_the_workers_equal_the_local_ones(cluster, inputs):
    from NeuroRelevanceLib.batch import ModelSource, distributed_collector
    from NeuroRelevanceLib.cohort import collect_activations
    from NeuroRelevanceLib.models import load_model

    card, table = inputs
    paths = list(pd.read_csv(table)["path"])
    model = load_model(card, device="cpu").model
    load = lambda p: read_nifti(p, dtype="float32")[0] / 100.0  # noqa: E731
    local = collect_activations(model, paths, batch_size=2, load=load)
    collect = distributed_collector(cluster, ModelSource(str(card), device="cpu"))
    seen = []
    remote = collect(model, paths, batch_size=2, load=load, progress=lambda k, n: seen.append((k, n)))
    assert remote.layer == local.layer and remote.layer_shape == local.layer_shape
    assert torch_close(remote.tensor, local.tensor) and torch_close(remote.outputs, local.outputs)
    assert seen[-1] == (6, 6)


def torch_close(a, b) -> bool:
    return bool(np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6))


def test_the_cohort_command_collects_activations_on_the_same_executor(cluster, inputs, tmp_path, capsys):
    from NeuroRelevanceLib.cli import main

    card, table = inputs
    cohort = pd.read_csv(table)
    pd.DataFrame({"path": cohort["path"], "target": cohort["age"],
                  "split": ["train"] * 4 + ["val"] * 2}).to_csv(tmp_path / "targets.csv", index=False)
    common = ["cohort", str(tmp_path / "targets.csv"), "--model", str(card), "--rank", "2", "2", "--no-grid",
              "--sparsity", "0", "--device", "cpu", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "here")]) == 0
    assert main(common + ["--out", str(tmp_path / "dask"), "--scheduler", cluster.client.scheduler.address]) == 0, \
        capsys.readouterr().err
    here, there = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("here", "dask"))
    assert there["tensor_shape"] == here["tensor_shape"] and there["layer"] == here["layer"]
    assert np.allclose(there["network_mae"]["train"], here["network_mae"]["train"], rtol=1e-5)
    assert np.allclose(there["linear_model_mae"]["val"], here["linear_model_mae"]["val"], rtol=1e-3)
