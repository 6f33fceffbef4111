"""One background run: the heavy step of a prepared job on a worker thread (start, progress, cancel, result).

The Slicer module polls it from a Qt timer, the web page from its event loop; both prepare the job and
apply the result on their own thread (the scene is never touched by the worker).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .jobs import Cancelled, Job, Progress


class BackgroundRun:
    """``work(job, progress)`` (default :func:`jobs.compute`) on a daemon thread.

    ``progress`` is the latest (message, fraction) the work reported; ``on_progress`` is also called
    with each report, on the worker thread. ``result()`` gives the job once done, or raises what the
    work raised (:class:`jobs.Cancelled` after :meth:`cancel`).
    """

    def __init__(self, job: Job, *, work: Callable[[Job, Progress], Any] | None = None,
                 on_progress: Progress | None = None) -> None:
        if work is None:
            from .jobs import compute

            work = compute
        self.job = job
        self._work: Callable[[Job, Progress], Any] = work
        self._on_progress = on_progress
        self.progress: tuple[str, float] = ("Starting", 0.0)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="NeuroRelevance run")

    def start(self) -> BackgroundRun:
        """Start the work; returns self."""
        self._thread.start()
        return self

    def _report(self, message: str, fraction: float) -> None:
        self.progress = (message, float(fraction))
        if self._on_progress is not None:
            self._on_progress(message, fraction)

    def _run(self) -> None:
        try:
            self._work(self.job, self._report)
        except BaseException as exc:  # handed to the caller's thread by result()
            self.error = exc

    def cancel(self) -> None:
        """Ask the work to stop at its next stage."""
        self.job.cancel()

    @property
    def done(self) -> bool:
        """True once the work has finished (or failed, or was cancelled)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds (lending the GIL to the worker); True when done."""
        self._thread.join(timeout)
        return self.done

    @property
    def cancelled(self) -> bool:
        """True when the work stopped because it was cancelled."""
        return isinstance(self.error, Cancelled)

    def result(self) -> Job:
        """The computed job; raises the work's error, or RuntimeError while it is still running."""
        if not self.done:
            raise RuntimeError("The run is still running; wait for it (done, wait()) first.")
        if self.error is not None:
            raise self.error
        return self.job
