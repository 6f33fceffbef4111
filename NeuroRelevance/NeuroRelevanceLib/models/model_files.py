"""The one way NeuroRelevance opens a model file: decide its format from its bytes, inspect it,
and only then let torch read it, from the same bytes (no second read a swap could change).

======================  ================================  ============================================
format (by content)     untrusted                         trusted (``trusted=True``)
======================  ================================  ============================================
``.pt2`` (export)       inspected (:mod:`.pt2_check`);     ``torch.export.load``
                        refused if torch would unpickle,
                        exec or load native code
``.pt2`` (torch<=2.7)   refused (pickled weights)          ``torch.export.load``
TorchScript             inspected (:mod:`.torchscript_    ``torch.jit.load``
                        check`); refused if its code
                        touches files or foreign C++
pickle / torch.save     ``torch.load(weights_only=True)``  ``torch.load(weights_only=False)``
                        (tensors and containers only)
safetensors             weights only: needs a card         same
======================  ================================  ============================================
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .archive import open_archive, sniff

TRUST_HINT = ("NeuroRelevance loads such a file only when you mark it trusted (trusted=True, "
              "'I trust this file'); if it is your own model, export it again from a plain network "
              "(torch.export.save or torch.jit.save).")
#: what the command line says instead of :data:`TRUST_HINT`: it has no way to mark a file trusted
CLI_TRUST_HINT = ("The command line never runs code from a model file: write a model card (JSON) naming a "
                  "NeuroRelevanceLib.nets architecture and safetensors weights, or export the model without pickles "
                  "(torch.export.save or torch.jit.save) and name that file as the card's weights (see "
                  "docs/pretrained.md); if you trust the file, use it from the Python API, where load_model takes "
                  "trusted=True.")
#: the library's advice for a card whose weights file is a pickled whole model (see :data:`TRUST_HINT`)
PICKLED_MODEL_HINT = ("NeuroRelevance loads it only when you mark the card trusted (trusted=True, 'I trust this "
                      "file'). Or save the network without pickled code: its weights with "
                      "torch.save(model.state_dict()) (or save_weights) and \"architecture\" in the card (a class "
                      "outside NeuroRelevanceLib.nets needs trust too), or the whole network with "
                      "torch.jit.save(torch.jit.script(model)) or torch.export.save, named as the card's weights "
                      "(see docs/pretrained.md).")
CARD_HINT = ("write a model card (JSON) naming the architecture and this weights file, and load "
             "the card (see docs/pretrained.md).")


class UntrustedFileError(InputError):
    """A refusal to run code from a file: ``found`` says what was found (front-end neutral); the
    message adds ``advice``, by default the library's (mark the file ``trusted=True``). A front end that
    cannot mark a file trusted gives its own advice with :meth:`advised` (``cli.run_command``,
    ``web.session.WebSession.select_model``)."""

    def __init__(self, found: str, advice: str = TRUST_HINT) -> None:
        super().__init__(f"{found} {advice}")
        self.found = found
        self.advice = advice

    def advised(self, advice: str, prefix: str = "") -> UntrustedFileError:
        """The same refusal with ``advice`` instead of this one's; ``prefix`` (e.g. "--model: ") names
        where the file was given."""
        return UntrustedFileError(f"{prefix}{self.found}", advice)


@dataclass
class ModelFile:
    """What a model file held: the object and how it was stored."""

    obj: Any                   # ExportedProgram, ScriptModule or nn.Module
    format: str                # "exported", "torchscript" or "pickle"


def read_bytes(path: Path, what: str = "model file") -> bytes:
    """The file's bytes, or one clear error."""
    if not path.is_file():
        raise InputError(f"No such {what}: {path}.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path.name} cannot be read ({exc.strerror or exc}).") from exc


def refuse(name: str, problems: list[str]) -> UntrustedFileError:
    """The error for a file that would run code: what was found, and how to proceed."""
    shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
    return UntrustedFileError(f"{name} holds what torch would run as code, unpickle or use to touch files "
                              f"while loading or running it: {shown}.")


def _torch_error(name: str, reader: str, exc: BaseException) -> InputError:
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return InputError(f"{name} could not be read by {reader} ({type(exc).__name__}: {line}).")


def read_model_file(path: str | Path, *, trusted: bool = False) -> ModelFile:
    """Open a TorchScript file, an exported program (``.pt2``) or a pickled module (see the table)."""
    path = Path(path)
    data = read_bytes(path)
    return model_from_bytes(data, path.name, trusted=trusted)


def model_from_bytes(data: bytes, name: str, *, trusted: bool = False) -> ModelFile:
    """:func:`read_model_file` on bytes already read (``name`` is for messages)."""
    import torch

    fmt = sniff(data)
    if fmt in ("pt2", "pt2-legacy"):
        if not trusted:
            if fmt == "pt2-legacy":
                raise refuse(name, ["it is a .pt2 in the torch <= 2.7 layout, whose weights, "
                                    "constants and example inputs torch unpickles"])
            from .pt2_check import pt2_problems

            problems = pt2_problems(open_archive(data, name))
            if problems:
                raise refuse(name, problems)
        try:
            return ModelFile(torch.export.load(io.BytesIO(data)), "exported")
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad archive
            raise _torch_error(name, "torch.export.load", exc) from exc
    if fmt == "torchscript":
        if not trusted:
            from .torchscript_check import torchscript_problems

            problems = torchscript_problems(open_archive(data, name))
            if problems:
                raise refuse(name, problems)
        try:
            return ModelFile(torch.jit.load(io.BytesIO(data), map_location="cpu"), "torchscript")
        except Exception as exc:  # noqa: BLE001
            raise _torch_error(name, "torch.jit.load", exc) from exc
    if fmt == "safetensors":
        raise InputError(f"{name} holds only weights (safetensors), not the network: {CARD_HINT}")
    if fmt == "pickle" and not data.startswith(b"\x80"):  # a pickle torch.save writes starts so
        raise InputError(f"{name} is neither a torch.export .pt2 archive nor a TorchScript file (nor a "
                         "torch.save or safetensors file); save the model with torch.export.save or "
                         "torch.jit.save.")
    obj = _unpickle(data, name, trusted)
    if isinstance(obj, dict):
        raise InputError(f"{name} holds a state dict without its architecture: {CARD_HINT}")
    if not callable(getattr(obj, "forward", None)):
        raise InputError(f"{name} holds a {type(obj).__name__}, not a network.")
    return ModelFile(obj, "pickle")


def _unpickle(data: bytes, name: str, trusted: bool) -> Any:
    import torch

    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - weights_only refuses anything beyond tensors
        if not trusted:
            raise UntrustedFileError(
                f"{name} is a pickled Python object (or not a model file at all); loading it would "
                "run code stored in the file.",
                "Export the model (TorchScript or torch.export .pt2), save a model card with a state dict, "
                "or, if you trust the file's origin, load it with trusted=True ('I trust this file').") from exc
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise _torch_error(name, "torch.load", exc) from exc
