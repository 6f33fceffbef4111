"""Whose folder is it? A command writes only into a new or empty folder, or one it wrote itself.

A user who points ``--output`` at a folder of their own (say a study folder holding ``subjects.csv`` and
``summary.json``) must not lose those files to outputs of the same name. :func:`check_own_folder`
refuses an existing, non-empty folder unless it holds the command's marker (:data:`OUTPUT_MARKER`,
written by :func:`mark_folder` when the command claims the folder) or, for folders written before the
marker existed, one of the command's own signature files (``batch.json`` of ``explain``...).
Nothing here imports anything heavy.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

from .vocabulary import OptionError, named

#: written first into a folder a command claims; names the command whose outputs the folder holds
OUTPUT_MARKER = ".neurorelevance-output.json"
#: what a file manager leaves in a folder: an "empty" folder may hold these
IGNORED = {".DS_Store", "Thumbs.db", "desktop.ini"}


def folder_owner(folder: Path) -> str | None:
    """The command named by ``folder``'s marker (None when there is no readable marker)."""
    try:
        return str(json.loads((folder / OUTPUT_MARKER).read_text(encoding="utf-8"))["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_empty(folder: Path) -> bool:
    """True when ``folder`` is missing or holds nothing but a file manager's files."""
    if not folder.is_dir():
        return not folder.exists()
    return not any(p.name not in IGNORED for p in islice(folder.iterdir(), 1000))


def check_own_folder(path: str | Path, option: str | tuple[str, str], command: str,
                     signatures: Sequence[str] = ()) -> None:
    """Refuse ``path`` when it is an existing, non-empty folder that ``command`` did not write.

    option: how the refusal names the folder: a flag ("--output"), or (keyword, flag) for a folder the library
    takes too (``vocabulary.named``).

    signatures: names (glob patterns) of files only ``command`` writes there, which make a folder from
    before the marker existed count as its own. Nothing is written here.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OptionError(named(option, folder), " is a file; give a folder (it is created when missing).")
    if not folder.is_dir() or is_empty(folder):
        return
    owner = folder_owner(folder)
    if owner == command:
        return
    if owner is None and any(next(folder.glob(pattern), None) is not None for pattern in signatures):
        return
    whose = f"outputs of 'neurorelevance {owner}'" if owner else "files that are not NeuroRelevance " \
        f"'{command}' outputs"
    raise OptionError(named(option, folder), f" is not empty and holds {whose}; writing there could replace them: "
                      "choose an empty or new folder. Nothing was written.")


def mark_folder(folder: Path, command: str) -> None:
    """Record in ``folder`` that it holds ``command``'s outputs (kept when already there)."""
    from . import __version__

    if folder_owner(folder) != command:
        (folder / OUTPUT_MARKER).write_text(json.dumps({"command": command, "software": f"NeuroRelevance "
                                                                                        f"{__version__}"}) + "\n",
                                            encoding="utf-8")
