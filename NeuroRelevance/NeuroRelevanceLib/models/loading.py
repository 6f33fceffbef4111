"""Turn a file into a ready ``nn.Module`` on the chosen device, without running untrusted code.

Every entry point (library, CLI, Slicer logic, web viewer, ``explain()`` on a path) opens model
files through :func:`load_model` / :func:`open_model`, which use :mod:`.model_files` (what each
format may contain and what is refused) and :mod:`.weights` (where a card's weights may be and
whether they fit). See docs/security.md.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..device import resolve_device
from ..errors import InputError, cause_line, one_tensor_error
from .archive import suffix_of
from .card import ModelCard, read_card
from .model_files import PICKLED_MODEL_HINT, UntrustedFileError, read_model_file
from .pickle_names import pickled_objects
from .schema import check_network_output
from .weights import check_fit, confined_weights_path, read_state_dict, weight_shapes, weights_format


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
      instead name a TorchScript or ``.pt2`` file as its weights and omit the architecture (or, only
      with ``trusted``, a whole model saved with ``torch.save(model)``). The weights must lie in the
      card's folder unless ``trusted``.
    - TorchScript archives and exported programs (``.pt2``) are inspected first and refused if
      torch would unpickle, execute or load native code from them, or if their code reads or
      writes files (unless ``trusted``).
    - Any other ``.pt``/``.pth``: a bare state dict needs a card (the architecture is unknown);
      a pickled full module is refused unless ``trusted=True``.
    The format is read from the file's content; suffixes are not case-sensitive.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(missing_model(path))
    target = resolve_device(device)
    card = None
    if suffix_of(path) == ".json":
        card = read_card(path)
        model, fmt = _from_card(card, trusted)
    else:
        model, fmt = _model_of(read_model_file(path, trusted=trusted))
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


def open_model(path: str | Path, *, trusted: bool = False) -> Any:
    """The object a model file holds, for the engine: an ``ExportedProgram``, a ``ScriptModule`` or
    an ``nn.Module`` (a card's network, on the CPU). Same checks as :func:`load_model`."""
    path = Path(path)
    if suffix_of(path) == ".json":
        return load_model(path, trusted=trusted, device="cpu").model
    return read_model_file(path, trusted=trusted).obj


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
    in_channels = first.in_features if isinstance(first, nn.Linear) else first.in_channels
    out = last.out_features if isinstance(last, nn.Linear) else last.out_channels
    return int(in_channels), int(out)


def _model_of(file) -> tuple[Any, str]:
    """The runnable module of a model file (an exported program's ``module()``)."""
    if file.format != "exported":
        return file.obj, file.format
    try:
        return file.obj.module(), file.format
    except Exception as exc:  # noqa: BLE001 - torch raises assertion errors for inconsistent programs
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"The exported program cannot be turned into a module ({line}).") from exc


def _from_card(card: ModelCard, trusted: bool = False):
    """The card's network: its TorchScript/.pt2 file, or its architecture with the weights."""
    weights = confined_weights_path(card, trusted)
    if not weights.is_file():
        raise InputError(f"The card {card.path.name if card.path else ''} names weights "
                         f"'{card.weights}', but {weights} does not exist.")
    fmt = weights_format(weights)
    pickled = pickled_objects(weights) if card.architecture is None and fmt in ("torch-zip", "pickle") else None
    if fmt in ("pt2", "pt2-legacy", "torchscript") or (pickled and trusted):
        model, kind = _model_of(read_model_file(weights, trusted=trusted))
        check_network_output(card, _output_shape(model, card, meta=False))
        return model, kind
    if pickled:
        what, names = pickled
        raise UntrustedFileError(
            f"The card names no architecture, and its weights file {weights.name} is {what}, not a state dict "
            f"({_naming(names)}): loading it would import and run code the file names.",
            PICKLED_MODEL_HINT)
    if card.architecture is None:
        raise InputError(f"The card names no architecture, and its weights file {weights.name} is "
                         "not a TorchScript or .pt2 file: add \"architecture\" to the card.")
    name = card.architecture["class"]
    meta = _build_architecture(card, trusted, meta=True)
    if meta is not None:  # shapes first: nothing big is allocated for a card that does not fit
        check_fit({k: tuple(v.shape) for k, v in meta.state_dict().items()},
                  weight_shapes(weights, fmt), weights.name, name)
        check_network_output(card, _output_shape(meta, card, meta=True))
    model = _build_architecture(card, trusted)
    state = read_state_dict(weights, fmt)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches (an architecture that cannot be built on meta)
        raise InputError(f"{weights.name} does not fit {name} with the card's kwargs: "
                         f"{str(exc).splitlines()[-1].strip()}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise InputError(f"{weights.name} does not fit {name} with the card's kwargs: missing "
                         f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}.")
    return model, "card"


def _naming(names: list[str]) -> str:
    """What a pickle would import, in words ("?" is a name its opcodes do not tell)."""
    known = [n for n in names if n != "?"]
    if not known:
        return "what it would import cannot be told from its opcodes"
    return f"it names {', '.join(known)}" + (" and more that its opcodes do not tell" if "?" in names else "")


def _output_shape(model, card: ModelCard, meta: bool) -> tuple[int, ...] | None:
    """The network's output shape for one input of the card's shape (None if it cannot be known).

    The network runs as it will be used, in eval mode (a BatchNorm on a 1×1×1 feature map fails only in
    training mode); every module's own mode is restored afterwards.
    """
    import torch

    if card.input.shape is None:
        return None
    x = torch.zeros((1, len(card.input.channels), *card.input.shape),
                    device="meta" if meta else "cpu")
    try:
        with torch.no_grad(), _eval_mode(model):
            out = model(x)
    except NotImplementedError:  # an operator without a meta kernel: learn it at the first run
        return None
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        raise InputError(_check_failure(exc, card)) from exc
    if not isinstance(out, torch.Tensor):
        raise one_tensor_error(out)
    return tuple(out.shape)


def rejected_input(card: ModelCard, cause: str) -> str:
    """The refusal of a card whose input the network rejects: the network's own words and the field to fix."""
    channels = len(card.input.channels)
    given = f"{channels} channel(s) ({', '.join(card.input.channels)}) × input.shape {list(card.input.shape or [])}"
    lowered = cause.lower()
    if "channel" in lowered:
        fix = (f"the network takes another number of channels than the card's input.channels lists ({channels}): "
               "give input.channels one name per channel the network was trained on")
    elif any(k in lowered for k in ("size", "shape", "dimension")):
        fix = ("the network cannot run on input.shape: give the shape it was trained on (a network that "
               "downsamples k times and joins skip connections needs each side divisible by 2^k)")
    else:
        fix = "check the card's input.channels and input.shape against what the network was trained on"
    return f"The network does not accept the card's input ({given}): {cause}. Fix the card: {fix}."


#: phrases of torch's errors about an input that does not fit a layer (channels, rank, sizes); not bare "input" or
#: "size", which nearly every torch error has ("Input type (float) and bias type (double) should be the same")
_SHAPE_PHRASES = ("expected input", "channels", "mat1 and mat2 shapes", "size of tensor",
                  "sizes of tensors must match", "non-singleton dimension", "input size", "input of size",
                  "(batched) input", "output size is too small",
                  "kernel size can't be greater", "spatial", "is invalid for input",
                  # the same errors on the meta device (the check's first run): its kernels word them otherwise
                  "channel dimension", "same reduction dim", "broadcast a dimension", "broadcastable")


def _check_failure(exc: BaseException, card: ModelCard) -> str:
    """The card check's refusal: the card's input is named as the cause (:func:`rejected_input`) only when torch's
    error is about the input's channels or sizes; any other failure is the network's own."""
    line = cause_line(exc, 240)
    if any(phrase in line.lower() for phrase in _SHAPE_PHRASES):
        return rejected_input(card, line)
    shape = f"{len(card.input.channels)} channel(s) × input.shape {list(card.input.shape or [])}"
    return (f"The network failed on a test input of the card's shape ({shape}, eval mode): {line}. This is an error "
            "of the network itself, not of the card's input: check its architecture, kwargs and weights.")


@contextmanager
def _eval_mode(model) -> Iterator[None]:
    """Run ``model`` in eval mode; each submodule gets its own earlier mode back afterwards."""
    if not hasattr(model, "modules") or not hasattr(model, "eval"):
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _build_architecture(card: ModelCard, trusted: bool, meta: bool = False):
    """The card's architecture, freshly built (on the ``meta`` device: no memory), or None when a
    trusted foreign class cannot be built on ``meta``. The global RNG is left as it was."""
    import torch

    from .. import nets

    if card.architecture is None:
        raise InputError("The card names no architecture: add \"architecture\" to the card.")
    name, kwargs = card.architecture["class"], card.architecture.get("kwargs", {})
    device = torch.device("meta") if meta else torch.device("cpu")
    try:
        with device:
            return nets.from_spec(card.architecture, seed=0)
    except TypeError as exc:
        raise InputError(f"The card's kwargs do not fit {name}: {exc}") from exc
    except ValueError as exc:
        if "unknown architecture" not in str(exc):
            raise InputError(f"The card's architecture.kwargs are not valid for {name}: {exc}") from exc
    if not trusted:
        raise UntrustedFileError(
            f"The card names the architecture '{name}', which is not one of NeuroRelevanceLib.nets: "
            "importing and calling it runs that package's code.",
            "Load it with trusted=True ('I trust this file') if you trust the card, or export the model "
            "(TorchScript / .pt2) and name that file as the card's weights.")
    module_name, _, class_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputError(f"The card's architecture '{name}' cannot be imported: install the "
                         "package that defines it, or use one of NeuroRelevanceLib.nets.") from exc
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise InputError(f"The card's architecture '{name}' is not a torch.nn.Module class.")
    try:
        with device, torch.random.fork_rng(devices=[]):
            return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"{name} does not accept the card's kwargs: {exc}.") from exc
    except Exception:  # noqa: BLE001 - a foreign class that cannot be built on meta
        if meta:
            return None
        raise


def missing_model(path: Path, fix: str = "") -> str:
    """The refusal for a model path that is no file; a bundled demo model's name gets its card's path."""
    from ..pretrained import MODELS

    name = path.name.removesuffix(".json")
    if name in MODELS and not path.parent.name:
        from ..pretrained import model_card_path

        return (f"No such model file: {path}. {name} is a bundled demo model: give its card, {model_card_path(name)} "
                f"(Python: NeuroRelevanceLib.pretrained.model_card_path({name!r})).")
    return f"No such model file: {path}{fix}."
