"""Where tasks run: in this process (the default, no cluster) or on Dask (``dask.distributed``).

Both executors have one method, :meth:`run`, that runs ``fn(chunk, *args)`` for every chunk and
yields ``(chunk, result)`` as each finishes, so results stream to the caller (and to disk) while
the rest still runs. :class:`DaskExecutor` starts a ``LocalCluster`` of N single-threaded worker
processes (``--workers N``), joins a running scheduler (``--scheduler ADDRESS``, e.g. one started
by dask-jobqueue on SLURM), or uses a ``distributed.Client`` you already have. Dask retries a task
whose worker died on another worker; a task that killed its workers repeatedly comes back as lost.
No queue or process pool of our own.
"""
from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import InputError
from ..vocabulary import OptionError

#: result of a chunk whose workers died while running it (Dask's KilledWorker)
LOST = "lost"


class InProcessExecutor:
    """Runs every task here, one after the other (what ``neurorelevance explain`` does by default)."""

    description = "in this process (no cluster)"

    def run(self, fn: Callable, chunks: Iterable[list], *args: Any) -> Iterator[tuple[list, Any]]:
        for chunk in chunks:
            yield chunk, fn(chunk, *args)

    def close(self) -> None:
        """Nothing to release."""


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new LocalCluster (``workers``), a scheduler (``scheduler``) or a client."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, client: Any = None) -> None:
        given = [(name, value if name != "client" else None, flag) for name, value, flag in
                 (("workers", workers, "--workers"), ("scheduler", scheduler, "--scheduler"), ("client", client, None))
                 if value is not None]
        if len(given) != 1:
            got = [p for i, item in enumerate(given) for p in ((" and ",) if i else ()) + (item,)] or ["neither"]
            raise OptionError("Give exactly one of ", ("workers", None, "--workers"), " (a local cluster) and ",
                              ("scheduler", None, "--scheduler"), " (a running cluster's address); got ", *got, ".")
        distributed = _distributed()
        self.cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            _check_reachable(scheduler)
            try:
                self.client = distributed.Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"Could not join the Dask scheduler at {scheduler} ({exc}); check the address "
                                 "and that the scheduler is running.") from exc
        else:
            if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
                raise OptionError(("workers", workers, "--workers"), ": the number of workers must be a whole "
                                  "number >= 1.")
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)

    @property
    def description(self) -> str:
        workers = len(self.client.scheduler_info().get("workers", {}))
        where = "LocalCluster" if self.cluster is not None else f"scheduler {self.client.scheduler.address}"
        return f"Dask {where} ({workers} worker{'s' if workers != 1 else ''})"

    def run(self, fn: Callable, chunks: Iterable[list], *args: Any) -> Iterator[tuple[list, Any]]:
        from distributed import KilledWorker, as_completed

        token = uuid.uuid4().hex[:8]
        futures = {}
        for index, chunk in enumerate(chunks):
            key = f"{getattr(fn, '__name__', 'task')}-{index}-{token}"
            futures[self.client.submit(fn, chunk, *args, key=key, pure=False)] = chunk
        try:
            for future in as_completed(futures):
                chunk = futures[future]
                try:
                    result = future.result()
                except KilledWorker:
                    result = LOST
                yield chunk, result
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)

    def close(self) -> None:
        """Close the client this executor opened and the LocalCluster it started."""
        if self._own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """The in-process executor, or a :class:`DaskExecutor` when ``workers`` or ``scheduler`` is given."""
    if workers is None and scheduler is None:
        return InProcessExecutor()
    return DaskExecutor(workers=workers, scheduler=scheduler)


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise OptionError(("workers", None, "--workers"), " and ", ("scheduler", None, "--scheduler"), " need Dask: "
                          "pip install \"dask[distributed]\" (or neurorelevance[dask]); without them the run stays "
                          "in this process.") from exc
    return distributed


def _check_reachable(address: str) -> None:
    """Refuse at once a tcp/tls address where nothing listens (Dask would retry for 30 s)."""
    from urllib.parse import urlparse

    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if parsed.scheme not in ("tcp", "tls") or not host or not port:
        if parsed.scheme in ("tcp", "tls"):
            raise OptionError(("scheduler", address, "--scheduler"), ": give the scheduler's address as "
                              "tcp://HOST:PORT.")
        return
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise InputError(f"No Dask scheduler answers at {address} ({exc.strerror or exc}); start one (e.g. "
                         "'dask scheduler', or dask-jobqueue's SLURMCluster) and pass its address.") from exc
