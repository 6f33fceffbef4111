"""A card's weights file: where it may be, what its tensors are, and whether they fit the network.

- The weights path is confined to the card's folder unless the card is trusted: no absolute
  path, no ``..``, no symlink that leaves the folder. The refusal reads the same whether or not
  the target exists, so a card cannot be used to probe the file system.
- Tensor names and shapes are read from the file's header (safetensors) or a memory map
  (``torch.save`` zip, ``weights_only``) and compared with the architecture built on the
  ``meta`` device, so a card asking for ``channels: [2048, 2048]`` fails before any memory is
  allocated for it.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path, PurePath
from typing import Any

from ..errors import InputError
from .archive import is_safetensors, zip_format
from .model_files import UntrustedFileError


def confined_weights_path(card: Any, trusted: bool = False) -> Path:
    """The card's weights file; outside the card's folder only when ``trusted``."""
    base = card.path.parent if card.path is not None else Path.cwd()
    named = str(card.weights)
    if trusted:
        return (base / named).resolve()
    where = card.path.name if card.path is not None else "The model card"
    refusal = UntrustedFileError(
        f"{where} names the weights '{named}' outside the card's own folder; keep the weights file "
        "beside the card (or in a folder below it).", "Or load the card with trusted=True if you trust it.")
    pure = PurePath(named)
    if "\x00" in named or pure.is_absolute() or pure.anchor or ".." in pure.parts:
        raise refusal
    try:
        root = base.resolve()
        target = (base / named).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, unreadable folders
        raise refusal from exc
    if target == root or not target.is_relative_to(root):
        raise refusal
    return target


def weights_format(path: Path) -> str:
    """The weights file's format from its content (``safetensors``, ``torch-zip``, ``pt2``, ...)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return zip_format(archive.namelist())
        with open(path, "rb") as handle:
            head = handle.read(16)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path.name} cannot be read ({exc}).") from exc
    return "safetensors" if is_safetensors(head, path.stat().st_size) else "pickle"


def _torch_state(path: Path, fmt: str) -> dict:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True,
                           mmap=(fmt == "torch-zip"))
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):  # a damaged file, not a refused object
            raise InputError(f"{path.name} is not a plain state dict ({_first_line(exc)}). Save weights with "
                             "save_weights() or torch.save(model.state_dict()).") from exc
        raise InputError(f"{path.name} is a pickled Python object, not a plain state dict (names → tensors): "
                         "reading it would run code stored in the file. Save the weights with save_weights() or "
                         "torch.save(model.state_dict()).") from exc
    except Exception as exc:  # noqa: BLE001 - corrupt files raise several types
        raise InputError(f"{path.name} is not a plain state dict ({_first_line(exc)}). Save weights with "
                         "save_weights() or torch.save(model.state_dict()).") from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise InputError(f"{path.name} does not hold a state dict (names → tensors).")
    return state


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without terminal colour codes (torch adds some)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", (str(exc).strip().splitlines() or [type(exc).__name__])[0])[:160]


def weight_shapes(path: Path, fmt: str) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape, read without loading the tensors' data."""
    if fmt == "safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                names = handle.keys()  # safe_open is not iterable itself
                return {k: tuple(handle.get_slice(k).get_shape()) for k in names}
        except Exception as exc:  # noqa: BLE001 - SafetensorError and OSError
            raise InputError(f"{path.name} is not a readable safetensors file ({exc}).") from exc
    return {k: tuple(v.shape) for k, v in _torch_state(path, fmt).items()}


def read_state_dict(path: Path, fmt: str) -> dict:
    """The state dict (safetensors, or ``torch.load(weights_only=True)``): never unpickles code."""
    if fmt == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path.name} is not a readable safetensors file ({exc}).") from exc
    return _torch_state(path, fmt)


def check_fit(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]],
              weights_name: str, architecture: str) -> None:
    """Raise one InputError naming the mismatches between the architecture's and the file's tensors."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} is {list(expected[k])} in the architecture but {list(found[k])} in the file"
             for k in expected if k in found and tuple(expected[k]) != tuple(found[k])]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        parts.append("; ".join(wrong[:3]) + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    if missing:
        parts.append(f"missing {missing[:5]}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:5]}")
    raise InputError(f"{weights_name} does not fit {architecture} with the card's architecture.kwargs: "
                     + "; ".join(parts) + ". Fix the kwargs or name the matching weights file.")
