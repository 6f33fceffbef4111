"""Layer activations of a cohort: forward hooks, subjects streamed in batches, into A (n × c × v).

Only one batch of volumes and one batch of activations are in memory besides A itself. The
model is run in ``eval`` mode under ``torch.no_grad``; its training flag is restored afterwards,
nothing else about it changes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..explanation.layers import last_feature_map

#: a source of one subject: an array (nibabel i, j, k order) or anything ``load`` accepts
Loader = Callable[[object], np.ndarray]


@dataclass
class Activations:
    """A (n × c × v, CPU), the layer grid shape (x, y, z), the network's outputs (n × k)."""

    tensor: torch.Tensor
    layer: str
    layer_shape: tuple[int, int, int]
    input_shape: tuple[int, int, int]
    outputs: torch.Tensor


def _is_script(model) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def _default_input(volume: np.ndarray) -> torch.Tensor:
    """(x, y, z) → (1, x, y, z) single-channel input; (ch, x, y, z) is kept as is."""
    t = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    return t[None] if t.ndim == 3 else t


def _run_script_chain(model, x: torch.Tensor, layer: str) -> tuple[Any, torch.Tensor]:
    """TorchScript models take no hooks: run the top-level children in order, capture ``layer``,
    and check that the chain reproduces the model's output (else the model is not a chain)."""
    names = [n for n, _ in model.named_children()]
    if layer not in names:
        raise InputError(f"TorchScript models take no forward hooks, so the layer must be a top-level "
                         f"child ({', '.join(names) or 'none'}); got {layer!r}. Pass an nn.Module to "
                         "decompose a nested layer.")
    y, feat = x, None
    for name, child in model.named_children():
        y = child(y)
        if name == layer:
            feat = y
    ref = model(x)
    if not torch.is_tensor(y) or y.shape != ref.shape or not torch.allclose(y, ref, rtol=1e-4, atol=1e-5):
        raise InputError("this TorchScript model is not a plain chain of its top-level children, so "
                         "its layer activations cannot be captured; pass the nn.Module instead.")
    return feat, ref


def collect_activations(model, sources: Sequence, layer: str | None = None, batch_size: int = 4,
                        device: torch.device | str = "cpu", load: Loader | None = None,
                        to_input: Callable[[np.ndarray], torch.Tensor] | None = None,
                        progress: Callable[[int, int], None] | None = None) -> Activations:
    """Activations of ``layer`` for every subject in ``sources``, streamed ``batch_size`` at a time.

    ``load`` turns a source into a volume array (default: the source is the array);
    ``to_input`` turns a volume into the model's input (default: add a channel axis).
    Returns A as float32 on the CPU with shape (n, c, v), v = x·y·z in C order of the layer grid.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    n = len(sources)
    if n == 0:
        raise InputError("no subjects were given; pass at least one volume.")
    load = load or (lambda s: np.asarray(s))
    to_input = to_input or _default_input
    dev = torch.device(device)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.no_grad():
            return _collect(model, sources, layer, batch_size, dev, load, to_input, progress)
    finally:
        if was_training:
            model.train()


def _load_batch(sources: Sequence, start: int, stop: int, load: Loader, to_input,
                ref_shape: tuple | None) -> tuple[torch.Tensor, tuple]:
    if start >= stop:
        raise InputError("no subject was given; the cohort needs at least one volume.")
    vols = []
    shape: tuple = ()
    for k in range(start, stop):
        vol = np.asarray(load(sources[k]))
        if not np.isfinite(vol).all():
            raise InputError(f"subject {k} ({_describe(sources[k])}) has NaN or infinite voxels; "
                             "repair or drop that volume.")
        shape = ref_shape = ref_shape or vol.shape
        if vol.shape != shape:
            raise InputError(f"subject {k} ({_describe(sources[k])}) has grid {vol.shape} but the first "
                             f"subject has {shape}; resample all volumes onto one grid.")
        vols.append(to_input(vol))
    return torch.stack(vols), shape


def _describe(source) -> str:
    return str(source) if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__") else "array"


def _collect(model, sources, layer, batch_size, dev, load, to_input, progress) -> Activations:
    n = len(sources)
    x, vol_shape = _load_batch(sources, 0, min(batch_size, n), load, to_input, None)
    x = x.to(dev)
    layer = layer or last_feature_map(model, x[:1])
    captured: dict[str, torch.Tensor] = {}
    handle = None
    if not _is_script(model):
        modules = dict(model.named_modules())
        if layer not in modules:
            raise InputError(f"the model has no module named {layer!r}; choose one of: "
                             f"{', '.join(k for k in modules if k)[:400]}")

        def hook(_m, _i, out):
            if "out" in captured:
                raise InputError(f"module {layer!r} runs more than once per forward pass; choose a "
                                 "module used once.")
            captured["out"] = out
        handle = modules[layer].register_forward_hook(hook)
    a: torch.Tensor | None = None
    outputs: torch.Tensor | None = None
    try:
        start = 0
        while start < n:
            stop = min(start + batch_size, n)
            if start > 0:
                x, _ = _load_batch(sources, start, stop, load, to_input, vol_shape)
                x = x.to(dev)
            captured.clear()
            if handle is None:
                feat, out = _run_script_chain(model, x, layer)
            else:
                out = model(x)
                feat = captured.get("out")
            if not isinstance(feat, torch.Tensor) or feat.ndim != 5:
                raise InputError(f"module {layer!r} does not output a 5-D (batch, c, x, y, z) map; "
                                 "choose a convolutional layer.")
            feat = feat.detach().float().cpu()
            out = torch.as_tensor(out).detach().float().cpu().reshape(stop - start, -1)
            if a is None or outputs is None:
                c, lx, ly, lz = feat.shape[1:]
                a = torch.empty((n, c, lx * ly * lz), dtype=torch.float32)
                outputs = torch.empty((n, out.shape[1]), dtype=torch.float32)
                layer_shape = (lx, ly, lz)
            a[start:stop] = feat.reshape(stop - start, feat.shape[1], -1)
            outputs[start:stop] = out
            if progress is not None:
                progress(stop, n)
            start = stop
    finally:
        if handle is not None:
            handle.remove()
    if a is None or outputs is None:
        raise InputError("no subject was given; the cohort needs at least one volume.")
    if not torch.isfinite(a).all():
        raise InputError(f"layer {layer!r} produced NaN or infinite activations; check the model "
                         "and the input intensities.")
    return Activations(a, layer, layer_shape, tuple(vol_shape[-3:]), outputs)


