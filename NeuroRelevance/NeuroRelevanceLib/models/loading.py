"""Turn a file into a ready ``nn.Module`` on the chosen device, without unpickling untrusted code."""
from __future__ import annotations

import importlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..device import resolve_device
from ..errors import InputError
from .card import ModelCard, read_card


@dataclass
class LoadedModel:
    """A network ready to run, with what is known about it."""

    model: Any
    card: ModelCard | None
    format: str            # "card", "torchscript", "exported", "pickle"
    device: Any
    parameters: int
    in_channels: int | None
    out_features: int | None

    def summary(self) -> str:
        name = self.card.name if self.card else type(self.model).__name__
        text = (f"{name}: {self.parameters:,} parameters on {self.device} ({self.format}); "
                f"inputs {self.in_channels or '?'} channel(s), outputs {self.out_features or '?'}")
        if self.card is not None and self.card.use_warning:
            text += f"\n⚠ {self.card.use_warning}"
        return text


def load_model(path: str | Path, *, trusted: bool = False, device: Any = "auto") -> LoadedModel:
    """Load a network from a model card (``.json``), TorchScript, ``.pt2`` or, if ``trusted``, a pickle.

    - ``.json``: the card's architecture (one of ``NeuroRelevanceLib.nets``; another importable
      ``nn.Module`` class only with ``trusted``) is built and its weights file read as a state dict
      (``.safetensors``, or ``torch.load(weights_only=True)``): no code is unpickled. A card may
      instead name a TorchScript or ``.pt2`` file as its weights and omit the architecture.
    - TorchScript archives (``torch.jit.save``) and exported programs (``.pt2``) hold no pickled
      Python classes and are loaded directly.
    - Any other ``.pt``/``.pth``: a bare state dict needs a card (the architecture is unknown);
      a pickled full module is refused unless ``trusted=True``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"No such model file: {path}.")
    target = resolve_device(device)
    suffix = path.suffix.lower()
    card = None
    if suffix == ".json":
        card = read_card(path)
        model, fmt = _from_card(card, trusted)
    elif suffix == ".pt2":
        model, fmt = torch.export.load(str(path)).module(), "exported"
    elif _is_torchscript(path):
        model, fmt = torch.jit.load(str(path), map_location="cpu"), "torchscript"
    else:
        model, fmt = _from_pickle(path, trusted), "pickle"
    if fmt != "exported":  # an exported program is already in inference form (no .eval())
        model.eval()
    if hasattr(model, "to"):
        model = model.to(target)
    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else 0
    in_channels, out_features = infer_io(model)
    if card is not None:
        in_channels = len(card.input.channels)
        if card.use_warning:
            import warnings

            warnings.warn(card.use_warning, UserWarning, stacklevel=2)
    return LoadedModel(model, card, fmt, target, params, in_channels, out_features)


def save_weights(model, path: str | Path) -> Path:
    """Write a model's state dict as ``.safetensors`` (contiguous CPU tensors, no code)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path


def infer_io(model) -> tuple[int | None, int | None]:
    """Input channels from the first convolution/linear layer, outputs from the last one."""
    import torch.nn as nn

    layers = [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    if not layers:
        return None, None
    first, last = layers[0], layers[-1]
    in_channels = first.in_channels if hasattr(first, "in_channels") else first.in_features
    out = last.out_channels if hasattr(last, "out_channels") else last.out_features
    return int(in_channels), int(out)


def _from_card(card: ModelCard, trusted: bool = False):
    """The card's network: its TorchScript/.pt2 file, or its architecture with the weights."""
    import torch

    weights = card.weights_path
    if not weights.is_file():
        raise InputError(f"The card {card.path.name if card.path else ''} names weights "
                         f"'{card.weights}', but {weights} does not exist.")
    if weights.suffix.lower() == ".pt2":
        return torch.export.load(str(weights)).module(), "exported"
    if _is_torchscript(weights):
        return torch.jit.load(str(weights), map_location="cpu"), "torchscript"
    if card.architecture is None:
        raise InputError(f"The card names no architecture, and its weights file {weights.name} is "
                         "not a TorchScript or .pt2 file: add \"architecture\" to the card.")
    model = _build_architecture(card, trusted)
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
        except Exception as exc:  # refused pickles and corrupt files raise several types
            raise InputError(f"{weights.name} is not a plain state dict ({exc}). Save weights "
                             "with save_weights() or torch.save(model.state_dict()).") from exc
    if not isinstance(state, dict):
        raise InputError(f"{weights.name} does not hold a state dict.")
    fit = f"{weights.name} does not fit {card.architecture['class']} with the card's kwargs"
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise InputError(f"{fit}: {str(exc).splitlines()[-1].strip()}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise InputError(f"{fit}: missing {result.missing_keys[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}.")
    return model, "card"


def _build_architecture(card: ModelCard, trusted: bool):
    import torch

    from .. import nets

    name, kwargs = card.architecture["class"], card.architecture.get("kwargs", {})
    try:
        return nets.from_spec(card.architecture)
    except TypeError as exc:
        raise InputError(f"The card's kwargs do not fit {name}: {exc}") from exc
    except ValueError:
        pass  # not one of ours: an importable class of an installed package
    if not trusted:
        raise InputError(
            f"The card names the architecture '{name}', which is not one of NeuroRelevanceLib.nets: "
            "importing and calling it runs that package's code. Load it with trusted=True ('I trust "
            "this file') if you trust the card, or export the model (TorchScript / .pt2) and name "
            "that file as the card's weights.")
    module_name, _, class_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputError(f"The card's architecture '{name}' cannot be imported: install the "
                         "package that defines it, or use one of NeuroRelevanceLib.nets.") from exc
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise InputError(f"The card's architecture '{name}' is not a torch.nn.Module class.")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"{name} does not accept the card's kwargs: {exc}.") from exc


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl"))
                   for n in archive.namelist())


def _from_pickle(path: Path, trusted: bool):
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything beyond tensors and containers
        if not trusted:
            raise InputError(
                f"{path.name} is a pickled Python object; loading it would run code stored in the "
                "file. Export the model (TorchScript or torch.export .pt2), save a model card with "
                "a state dict, or, if you trust the file's origin, load it with trusted=True "
                "('I trust this file').") from exc
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(obj, dict):
        raise InputError(f"{path.name} holds a state dict without its architecture: write a model "
                         "card (JSON) naming the architecture and this weights file, and load the card.")
    if not hasattr(obj, "forward"):
        raise InputError(f"{path.name} holds a {type(obj).__name__}, not a network.")
    return obj
