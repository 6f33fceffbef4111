"""Registry of the reference architectures, for model cards: ``build(name, **kwargs)``.

A model card names an architecture by its class name (``"PreActResNet3d"``) or its import path
(``"NeuroRelevanceLib.nets.PreActResNet3d"``) and stores the keyword arguments; ``build`` turns
both back into a freshly initialised ``nn.Module`` (weights are loaded separately, without
unpickling code). ``spec(model)`` writes the pair for a model built here.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from .deep_taylor_cnn import DeepTaylorCNN
from .preact_resnet import PreActResNet3d
from .unet import UNet3d

#: registry name -> class; the names are the class names.
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "DeepTaylorCNN": DeepTaylorCNN,
    "PreActResNet3d": PreActResNet3d,
    "UNet3d": UNet3d,
}

_PREFIXES = ("NeuroRelevanceLib.nets.", "NeuroRelevanceLib.nets.deep_taylor_cnn.",
             "NeuroRelevanceLib.nets.preact_resnet.", "NeuroRelevanceLib.nets.unet.")


def resolve(name: str) -> type[nn.Module]:
    """Return the architecture class for a registry name or an import path inside ``NeuroRelevanceLib.nets``."""
    if not isinstance(name, str):
        raise TypeError(f"architecture name must be a string, got {type(name).__name__}.")
    short = name
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if name.startswith(prefix):
            short = name[len(prefix):]
            break
    cls = ARCHITECTURES.get(short)
    if cls is None or (short == name and "." in name):
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)} "
                         "(or NeuroRelevanceLib.nets.<name>).")
    return cls


def kwargs_of(name: str) -> dict[str, Any]:
    """The keyword arguments of an architecture with their defaults (for documentation and card checks)."""
    params = inspect.signature(resolve(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def build(name: str, *, seed: int | None = None, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with ``kwargs``, in eval mode.

    ``seed`` makes the initial weights reproducible without touching the global RNG state.
    Unknown keyword arguments raise one error that lists the accepted ones.
    """
    cls = resolve(name)
    accepted = kwargs_of(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{cls.__name__} got unknown argument(s) {unknown}; accepted: {sorted(accepted)}.")
    if seed is None:
        model = cls(**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(**kwargs)
    return model.eval()


def spec(model: nn.Module) -> dict[str, Any]:
    """``{"class": "NeuroRelevanceLib.nets.<Name>", "kwargs": {...}}`` for a model built from this registry."""
    name = type(model).__name__
    if ARCHITECTURES.get(name) is not type(model):
        raise ValueError(f"{name} is not one of NeuroRelevanceLib.nets' architectures {sorted(ARCHITECTURES)}; "
                         "write its card entry by hand.")
    return {"class": f"NeuroRelevanceLib.nets.{name}", "kwargs": model.config}


def from_spec(entry: Mapping[str, Any], *, seed: int | None = None) -> nn.Module:
    """Inverse of :func:`spec`: build the model a card's ``{"class", "kwargs"}`` entry describes."""
    if not isinstance(entry, Mapping) or "class" not in entry:
        raise ValueError("an architecture entry needs a 'class' key (and optional 'kwargs'), "
                         f"got {entry!r}.")
    kwargs = entry.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"architecture 'kwargs' must be a JSON object, got {type(kwargs).__name__}.")
    return build(entry["class"], seed=seed, **dict(kwargs))
