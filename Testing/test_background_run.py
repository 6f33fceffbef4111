"""One background-run handle (start, progress, cancel, result) for the Slicer module and the web page:
a real run on a worker thread reports progress and gives the computed job, a cancelled one raises
``Cancelled`` from ``result()``, a failing one re-raises its own error, and both front ends use the handle."""
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from NeuroRelevanceLib.background import BackgroundRun
from NeuroRelevanceLib.jobs import Cancelled
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import run_scan, tiny_card

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MODULE = Path(__file__).resolve().parents[1] / "NeuroRelevance"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(tiny_card(tmp_path_factory.mktemp("model")), device="cpu")


@pytest.fixture
def job(scene, views, loaded):
    return RelevanceLogic(scene, views).prepare([run_scan(scene)], loaded)


def test_a_run_reports_progress_and_gives_the_computed_job(job):
    seen = []
    run = BackgroundRun(job, on_progress=lambda m, f: seen.append(f)).start()
    assert run.wait(60) and run.done
    assert run.result() is job and job.explanation is not None and np.isfinite(job.raw[0]).all()
    assert seen == sorted(seen) and seen[-1] > 0.5 and run.progress[1] == seen[-1]
    assert not run.cancelled and run.error is None


def test_a_cancelled_run_raises_cancelled_and_leaves_no_result(job):
    gate = threading.Event()

    def work(j, progress):
        progress("waiting", 0.1)
        gate.wait(10)
        if j.cancel_event.is_set():
            raise Cancelled("cancelled")
        return j

    run = BackgroundRun(job, work=work).start()
    run.cancel()
    gate.set()
    assert run.wait(10) and run.cancelled
    with pytest.raises(Cancelled):
        run.result()


def test_a_failing_run_reraises_its_error_and_result_before_the_end_is_refused(job):
    gate = threading.Event()

    def work(j, progress):
        gate.wait(10)
        raise ValueError("no such class")

    run = BackgroundRun(job, work=work).start()
    with pytest.raises(RuntimeError, match="still running"):
        run.result()
    gate.set()
    assert run.wait(10) and not run.cancelled and isinstance(run.error, ValueError)
    with pytest.raises(ValueError, match="no such class"):
        run.result()


def test_both_front_ends_use_the_handle_and_start_no_thread_of_their_own():
    for path in (MODULE / "NeuroRelevance.py", MODULE / "NeuroRelevanceLib" / "web" / "app.py"):
        code = path.read_text()
        assert "BackgroundRun(" in code, path.name
        assert not re.search(r"threading\.Thread\(|run_in_executor\(None, compute", code), path.name
