"""Files that are either complete or absent: write under a temporary name, then rename.

:func:`atomic_path` yields a temporary path in the target's folder (``.tmp-<token>-<name>``, so
writers that look at the suffix, like nibabel, still see ``.nii.gz``); when the block succeeds it
is renamed over the target in one step (``os.replace``), when it fails it is removed and the
target is left as it was. A process killed in the middle leaves only a ``.tmp-`` file, which
:func:`remove_stale` cleans up before the next attempt.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: prefix of temporary names (hidden files, never a result)
PREFIX = ".tmp-"


def temporary_name(path: Path) -> Path:
    """A unique temporary path beside ``path`` that keeps its suffixes."""
    return path.with_name(f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` only if the block completes."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        yield temporary
        if not temporary.exists():
            raise OSError(f"Nothing was written to {path}.")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def remove_stale(folder: str | Path) -> int:
    """Remove temporary files left in ``folder`` by an interrupted writer; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
