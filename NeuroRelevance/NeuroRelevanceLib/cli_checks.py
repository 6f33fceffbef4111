"""What every sub-command of the command line shares: one-line errors, argument types, output checks.

- :class:`Parser` prints an argument error as one line (no usage block) and exits with code 2.
- argument types (:func:`number`, :func:`port`), device names and help-text ranges live in
  :mod:`.cli_arguments` (imported here too, as before).
- :func:`check_output_file` and :func:`output_folder` prove an output can be written *before*
  the work starts; :func:`output_folder` removes the folder it made if the command fails.
- :func:`spare_inputs` refuses an output path that is one of the command's inputs (the same file
  through any spelling, symlink or hard link, or an input lying where an output folder is written);
  every sub-command that writes files calls it before the work.
- :func:`user_error` and :func:`report_unexpected` are the two ways a command ends in error; the
  second writes the traceback to a log file (``$NEURORELEVANCE_LOG_DIR``, else the user cache).
- :func:`load_model_argument` and :func:`atlas_argument` turn any failure to read a ``--model`` or
  ``--atlas`` into an :class:`InputError` naming the option and the file.
Nothing heavy is imported at module level (the ``--help`` path stays fast).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from .cli_arguments import device_argument, number, plain_number, port, with_range  # noqa: F401 - as before
from .errors import InputError
from .vocabulary import OptionError, named


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) turned into one space."""
    return " ".join(str(text).split())


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``prog: error: message (see prog --help)``."""

    def error(self, message: str) -> NoReturn:
        print(one_line(f"{self.prog}: error: {message} (see {self.prog} --help)"), file=sys.stderr)
        self.exit(2)

    def add_argument(self, *args, **kwargs):
        """``add_argument`` whose help states the range a :func:`number` type enforces ("range [1, 4096]")."""
        kwargs["help"] = with_range(kwargs.get("help"), getattr(kwargs.get("type"), "span", ""))
        return super().add_argument(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:  # argparse turns "--opt=--" into [] without calling the type
            value = getattr(namespace, action.dest, None)
            if action.type is None or not isinstance(value, list):
                continue
            if action.nargs is None or (action.nargs == "+" and not value) or \
                    (isinstance(action.nargs, int) and len(value) != action.nargs):
                count = "one value" if action.nargs in (None, "+") else f"{action.nargs} values"
                self.error(f"argument {'/'.join(action.option_strings)}: expected {count}")
        return namespace, extras


def user_error(command: str, message: str) -> int:
    """Print a user error as one line on stderr; returns the exit code 2."""
    print(one_line(f"{command}: error: {message}"), file=sys.stderr)
    return 2


def log_folder() -> Path:
    """Where tracebacks of unexpected failures go: ``$NEURORELEVANCE_LOG_DIR`` or the user cache."""
    configured = os.environ.get("NEURORELEVANCE_LOG_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "neurorelevance" / "logs"


def report_unexpected(command: str, exc: BaseException) -> int:
    """One line on stderr naming the error and the log file with its traceback; returns 1."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = None
    for folder in (log_folder(), Path(tempfile.gettempdir()) / "neurorelevance-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / f"error-{stamp}-{os.getpid()}.log"
            log.write_text(f"{command} {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
            break
        except OSError:
            log = None
    where = f"full traceback in {log}" if log else "the traceback could not be written to a log"
    summary = one_line(f"{type(exc).__name__}: {exc}")[:300]
    print(one_line(f"{command}: unexpected error: {summary} ({where}; please report it)"),
          file=sys.stderr)
    return 1


def check_output_file(path: str | Path | None, option: str) -> Path | None:
    """Prove that ``path`` can be written (its folder is made if missing; nothing is left behind)."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.is_dir():
        raise InputError(f"{option} {target} is a folder; give a file name.")
    _refuse_file_ancestor(target.parent, target, option)
    made = _missing_folders(target.parent)
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab"):
            pass
    except OSError as exc:
        raise InputError(f"{option} {target} cannot be written ({exc.strerror or exc}); choose a "
                         "path in a folder you may write to.") from None
    finally:
        if not existed and target.is_file():
            target.unlink()
        _remove_empty(made)
    return target


@contextmanager
def output_folder(path: str | Path, option: str, command: str | None = None,
                  signatures: Sequence[str] = ()) -> Iterator[Path]:
    """An output folder proven writable before the work; the folder (if made here) goes on failure.

    With ``command``, an existing non-empty folder that ``command`` did not write (see
    :mod:`.folder_owner`; ``signatures`` are its files from before the marker) is refused, and the
    folder is marked as ``command``'s before the work.
    """
    from .folder_owner import check_own_folder, mark_folder

    folder = Path(path).expanduser()
    _refuse_file_ancestor(folder, folder, option)
    if command is not None:
        check_own_folder(folder, option, command, signatures)
    made = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".neurorelevance-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        if command is not None:
            mark_folder(folder, command)
    except OSError as exc:
        _remove_empty(made)
        raise InputError(f"{option} {folder} cannot be used as an output folder ({exc.strerror or exc}); "
                         "choose a folder you may write to.") from None
    try:
        yield folder
    except BaseException:
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)  # the outermost folder this call made
        raise


def _refuse_file_ancestor(folder: Path, target: Path, option: str) -> None:
    """A file where a folder of the path should be is named as such."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"{option} {target}: {existing} is a file, not a folder; choose another path.")


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, innermost first."""
    return [p for p in [folder, *folder.parents] if not p.exists() and not p.is_symlink()]


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


#: files of an input folder looked at (a DICOM series has hundreds; a mistaken "/" has millions)
_MAX_FOLDER_FILES = 100_000


def spare_inputs(inputs: Mapping[str, Any], *, files: Mapping[str, Any] | None = None,
                 folder: tuple[Any, Any] | None = None, writes: Sequence[str] = ()) -> None:
    """Refuse an output that would overwrite one of the command's inputs; call it before the work.

    inputs: what each input is called ("heatmap", "--model", ...) -> its path or paths (files or
        folders; "a.nii.gz,b.nii.gz" channel lists are split; names that are no path, such as a
        bundled atlas, are skipped).
    files: output option -> file path. Refused when it is an input file under any spelling
        (relative, ``..``, a symlink, a hard link) or when two outputs name the same file.
    folder, writes: (option, folder) of a command that writes ``writes`` inside that folder (option: a flag, or
        (keyword, flag) for a folder the library takes too, ``vocabulary.named``)
        (relative names; a trailing ``*`` means every path that starts with it). Refused when an
        input lies at one of those paths, directly or through a link.
    Nothing is written, created or removed here.
    """
    known = list(_input_files(inputs))
    by_identity = {identity: (role, shown) for role, shown, _, identity in known}
    seen: dict[tuple, str] = {}
    for option, path in (files or {}).items():
        if path is None:
            continue
        target = Path(path).expanduser()
        identity = _identity(target)
        if identity is None:
            continue  # a new file is nobody's input
        if identity in by_identity:
            role, shown = by_identity[identity]
            raise InputError(f"{option} {target} is the input {role} {shown} (the same file); writing there would "
                             "destroy it: choose another output path. Nothing was written.")
        if identity in seen:
            raise InputError(f"{seen[identity]} and {option} both name {target}; give each output its own path.")
        seen[identity] = option
    if folder is None:
        return
    option, path = folder
    root = Path(os.path.realpath(Path(path).expanduser()))
    for role, shown, real, _ in known:
        try:
            relative = real.relative_to(root).as_posix()
        except ValueError:
            continue
        if is_written(relative, writes):
            raise OptionError(named(option, path), f": the run writes {relative} in that folder, which is the input "
                              f"{role} {shown}; choose another output folder. Nothing was written.")
    for existing, relative in _written_files(root, writes):
        identity = _identity(existing)
        if identity in by_identity:
            role, shown = by_identity[identity]
            raise OptionError(named(option, path), f": the run writes {relative} in that folder, which is a link to "
                              f"the input {role} {shown}; choose another output folder. Nothing was written.")


def model_files(path: Any) -> list[Path]:
    """The files behind a ``--model`` argument: the path and, for a card (.json), its weights file."""
    if path is None:
        return []
    files = [Path(path).expanduser()]
    if files[0].suffix.lower() == ".json":
        try:
            weights = json.loads(files[0].read_text(encoding="utf-8")).get("weights")
        except (OSError, ValueError, AttributeError):
            weights = None  # an unreadable card is refused by the model loader with its own message
        if isinstance(weights, str) and weights:
            files.append(files[0].parent / weights)
    return files


def _identity(path: Path) -> tuple[int, int] | None:
    """The file a path leads to (device, inode; through symlinks); None when there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def _input_files(inputs: Mapping[str, Any]) -> Iterator[tuple[str, str, Path, tuple[int, int]]]:
    """(role, path as given, real path, identity) of every existing input file and folder."""
    for role, paths in inputs.items():
        if paths is None or isinstance(paths, (str, Path)):
            paths = [paths]
        for given in paths:
            if given is None or str(given).strip() == "":
                continue
            text = str(given)
            pieces = text.split(",") if "," in text and not Path(text).expanduser().exists() else [text]
            for piece in pieces:
                candidate = Path(piece.strip()).expanduser()
                identity = _identity(candidate)
                if identity is None:
                    continue
                yield role, str(given), Path(os.path.realpath(candidate)), identity
                if candidate.is_dir():
                    yield from _folder_files(role, candidate)


def _folder_files(role: str, folder: Path) -> Iterator[tuple[str, str, Path, tuple[int, int]]]:
    count = 0
    for base, _, names in os.walk(folder):
        for name in names:
            count += 1
            if count > _MAX_FOLDER_FILES:
                return
            path = Path(base) / name
            identity = _identity(path)
            if identity is not None:
                yield f"{role} file", str(path), Path(os.path.realpath(path)), identity


def is_written(relative: str, writes: Sequence[str]) -> bool:
    """Whether a command writing ``writes`` (names; a trailing * = a prefix) writes the relative path."""
    return any(relative == w or (w.endswith("*") and relative.startswith(w[:-1])) for w in writes)


def _written_files(root: Path, writes: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """Existing paths in ``root`` at the names a command writes (to compare them with the inputs)."""
    if not root.is_dir():
        return
    for pattern in writes:
        if not pattern.endswith("*"):
            if (root / pattern).exists():
                yield root / pattern, pattern
            continue
        prefix = pattern[:-1]
        parent = root / prefix.rsplit("/", 1)[0] if "/" in prefix else root
        count = 0
        for base, folders, names in os.walk(parent):
            if "/" not in prefix and base == str(parent):  # top level: only what starts with the prefix
                folders[:] = [f for f in folders if f.startswith(prefix)]
            for name in names:
                path = Path(base) / name
                relative = path.relative_to(root).as_posix()
                count += 1
                if count > _MAX_FOLDER_FILES:
                    break
                if relative.startswith(prefix):
                    yield path, relative


def load_model_argument(path: str | Path, option: str = "--model", **options):
    """``models.load_model`` for a command-line path: any failure to read it is a user error."""
    from .models import load_model
    from .models.model_files import UntrustedFileError

    try:
        return load_model(Path(path), **options)
    except UntrustedFileError as exc:  # named here; cli.run_command gives the command line's advice
        raise exc.advised(exc.advice, f"{option}: ") from None
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a damaged file fails deep inside torch/safetensors/zipfile
        raise InputError(f"{option} {path}: the model could not be read ({type(exc).__name__}: "
                         f"{one_line(exc)[:200]}); check that the file and its weights are complete "
                         "and were saved by NeuroRelevance, torch.jit.save or torch.export.") from None


def atlas_argument(atlas: str | None, option: str = "--atlas", names: str | None = None) -> None:
    """Read ``atlas`` (bundled name or label-map path) now, so a bad one fails before the work."""
    if atlas is None:
        return
    from .regions import resolve_atlas

    try:
        resolve_atlas(atlas, names)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise InputError(f"{option} {atlas}: the atlas could not be read ({type(exc).__name__}: "
                         f"{one_line(exc)[:200]}); pass a bundled atlas name (neurorelevance regions "
                         "--list-atlases) or a label-map NIfTI.") from None
