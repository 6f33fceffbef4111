"""Quiet graph capture: torch.export / torch.jit.trace attempts that fail (or warn) on a model write pages of
log records and graph dumps to stderr; the engine records what it tried in ``Explanation.graph_check``.

``quiet_capture()`` holds back, for the duration of one capture attempt, the records that reach torch's own
log handlers, the Python warnings the tracers emit (``TracerWarning`` …) and what torch.export prints to
``sys.stderr`` from the capturing thread (its partial graph); other threads' writes to ``sys.stderr`` go
through. It is entered only under the capture lock (``capture._TRACE_LOCK``), like the tracers' own
configuration changes; records of other loggers and other handlers are untouched.
"""
from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class _Hold(logging.Filter):
    """Drops every record (kept in ``held`` for inspection)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []
        self.printed: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.held.append(record)
        return False


class _ThreadStream:
    """``sys.stderr`` stand-in: the capturing thread's writes are held, every other thread's pass through."""

    def __init__(self, stream, held: list) -> None:
        self._stream, self._held, self._thread = stream, held, threading.get_ident()

    def write(self, text: str) -> int:
        if threading.get_ident() == self._thread:
            self._held.append(text)
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _torch_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger("torch")] + [
        lg for name, lg in list(logging.Logger.manager.loggerDict.items())
        if name.startswith("torch") and isinstance(lg, logging.Logger)]
    seen: dict[int, logging.Handler] = {}
    for lg in loggers:
        for h in lg.handlers:
            seen[id(h)] = h
    return list(seen.values())


@contextmanager
def quiet_capture() -> Iterator[_Hold]:
    """Silence torch's log handlers and the tracers' warnings while one graph capture runs."""
    hold = _Hold()
    handlers = _torch_handlers()
    for h in handlers:
        h.addFilter(hold)
    stream = sys.stderr
    proxy = _ThreadStream(stream, hold.printed)
    sys.stderr = proxy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield hold
    finally:
        if sys.stderr is proxy:
            sys.stderr = stream
        for h in handlers:
            h.removeFilter(hold)
