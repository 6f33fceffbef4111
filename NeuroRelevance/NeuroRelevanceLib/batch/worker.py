"""What runs where the subjects are explained: the model, loaded once per process and kept.

A Dask worker (or this process, in the default in-process mode) keeps every model it loaded in
:data:`_MODELS`, keyed by the model files' paths, sizes and modification times, so a cohort of
thousands of subjects loads the model once per worker. Loading goes through
``models.load_model`` (model cards, TorchScript, ``.pt2``; no unpickling unless trusted).
"""
from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: models loaded by this process, and how often each was loaded (1 unless the files changed)
_MODELS: dict[tuple, Any] = {}
_LOADS: Counter = Counter()
_LOCK = threading.Lock()
_KEEP = 2


@dataclass(frozen=True)
class ModelSource:
    """Where a worker loads the model from: a model card (or TorchScript / .pt2) path."""

    path: str
    trusted: bool = False
    device: str = "auto"

    def key(self) -> tuple:
        path = Path(self.path)
        stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
        return (str(path.resolve()), stamp, self.trusted, self.device)


def worker_model(source: ModelSource):
    """The :class:`models.LoadedModel` of ``source`` in this process, loaded on first use and kept."""
    key = source.key()
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            import warnings

            from ..models import load_model

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the card's use warning is in every record
                loaded = load_model(Path(source.path), trusted=source.trusted, device=source.device)
            _MODELS[key] = loaded
            _LOADS[key] += 1
            while len(_MODELS) > _KEEP:
                _MODELS.pop(next(iter(_MODELS)))
        return loaded


def model_loads(source: ModelSource) -> int:
    """How many times this process loaded ``source`` (1 when it was kept, as it should be)."""
    return _LOADS[source.key()]


def process_info() -> dict:
    """Where a result was computed and what that process has used: host, pid, peak memory (MiB)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    except ImportError:  # Windows (Slicer's console): the peak working set
        import psutil

        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", info.rss) / 2**20
    return {"worker": f"{socket.gethostname()}:{os.getpid()}", "peak_rss_mib": round(peak, 1)}
