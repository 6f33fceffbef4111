"""explain_cohort on a real dask.distributed LocalCluster with two worker processes."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP, single_scan_map
from NeuroRelevanceLib.batch import DaskExecutor, explain_cohort
from NeuroRelevanceLib.nifti import read_nifti

pytest.importorskip("distributed")
OPTIONS = dict(atlases=(ATLAS,), min_overlap=MIN_OVERLAP, reference_group="control", target="AD", device="cpu")


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
        expected = single_scan_map(card, subject.path, target=1)  # OPTIONS' target "AD"
        assert np.allclose(written, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max()), subject.id
    assert all(os.path.isfile(p) for p in subjects["png"])  # VTK renders inside the worker processes too
    workers = subjects.groupby("worker")["model_loads"].max()
    assert len(workers) == 2 and (workers == 1).all(), subjects[["worker", "model_loads"]]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["executor"].startswith("Dask")


def test_a_killed_worker_and_a_rerun_complete_the_cohort_without_duplicates(cluster, inputs, tmp_path):
    card, table = inputs
    out = tmp_path / "out"
    client = cluster.client
    victim_address, victim = sorted(client.run(os.getpid).items())[0]
    killed = []

    def kill_while_busy():
        """SIGKILL one worker process the moment it is explaining subjects (a crash in mid-run)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = client.processing().get(victim_address, ())
            if any(str(key).startswith("explain_subjects") for key in busy):
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_while_busy)
    watcher.start()
    try:
        first = explain_cohort(table, card, out, executor=cluster, **{**OPTIONS, "png": False})
    finally:
        watcher.join()
    assert killed, "the worker was never seen busy"
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
    assert sorted(long["id"].unique()) == sorted(status.index)


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


def test_the_cohort_decomposition_collects_its_activations_on_the_same_executor(cluster, inputs, tmp_path,
                                                                                 capsys):
    from NeuroRelevanceLib.batch import ModelSource, distributed_collector
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.cohort import collect_activations
    from NeuroRelevanceLib.models import load_model

    card, table = inputs
    cohort = pd.read_csv(table)
    paths = list(cohort["path"])
    model = load_model(card, device="cpu").model
    load = lambda p: read_nifti(p, dtype="float32")[0] / 100.0  # noqa: E731
    local = collect_activations(model, paths, batch_size=2, load=load)
    collect = distributed_collector(cluster, ModelSource(str(card), device="cpu"))
    seen = []
    remote = collect(model, paths, batch_size=2, load=load, progress=lambda k, n: seen.append((k, n)))
    assert remote.layer == local.layer and remote.layer_shape == local.layer_shape
    assert torch_close(remote.tensor, local.tensor) and torch_close(remote.outputs, local.outputs)
    assert seen[-1] == (6, 6)
    # the command line: `neurorelevance cohort ... --scheduler ADDRESS` runs the same collector
    pd.DataFrame({"path": paths, "target": cohort["age"],
                  "split": ["train"] * 4 + ["val"] * 2}).to_csv(tmp_path / "targets.csv", index=False)
    code = main(["cohort", str(tmp_path / "targets.csv"), "--model", str(card), "--rank", "2", "2", "--no-grid",
                 "--sparsity", "0", "--device", "cpu", "--quiet", "--out", str(tmp_path / "dask"),
                 "--scheduler", cluster.client.scheduler.address])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "dask" / "summary.json").read_text())
    from NeuroRelevanceLib.preprocessing import prepare_input

    loaded = load_model(card, device="cpu")
    here = collect_activations(loaded.model, paths, batch_size=2,
                               load=lambda p: prepare_input([read_nifti(p, dtype="float32")], loaded.card).array[0])
    assert summary["tensor_shape"] == list(here.tensor.shape) and summary["layer"] == here.layer
    predicted = here.outputs[:4, 0].numpy()
    assert np.isclose(summary["network_mae"]["train"], np.abs(predicted - cohort["age"][:4].to_numpy()).mean(),
                      rtol=1e-5)


def torch_close(a, b) -> bool:
    return bool(np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6))
