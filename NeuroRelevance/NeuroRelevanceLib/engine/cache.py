"""Reuse of our private model copy and its graphs across ``explain`` calls on an unchanged model.

Copying a model (new tensors in the run's dtype/device) and tracing it cost as much as a forward pass
of a small input (DenseNet121: 0.1–0.3 s and 0.3 s). An ``nn.Module`` explained again on the same
device and dtype reuses both, but only while its **fingerprint** is unchanged: every submodule's
identity and class, its instance-level ``forward``, every parameter's and buffer's identity,
storage, shape, dtype and version counter (an optimiser step, ``load_state_dict`` or ``copy_``
changes it), and every other attribute that its forward could read (numbers, strings, flags,
containers of them by value; other objects by identity). Anything else rebuilds. The trace check
still runs on every call and every input: a cached graph is only a candidate, never trusted.

Guarantees kept: the cache holds our copies, never the user's tensors; it holds the model weakly (an
entry dies with its model); one call uses an entry at a time (a concurrent call on the same model gets
a fresh copy instead of waiting); at most ``MAX_ENTRIES`` copies are kept (``clear_cache()`` drops them).
Models with inference-mode tensors (no version counter) are never cached.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

MAX_ENTRIES = 2
_SKIP = {"_parameters", "_buffers", "_modules", "training", "_forward_hooks", "_forward_pre_hooks",
         "_backward_hooks", "_backward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
         "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
         "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_is_full_backward_hook",
         "_non_persistent_buffers_set"}
_SCALARS = (int, float, bool, str, bytes, complex, type(None), torch.dtype, torch.device, torch.Size)


class _Uncacheable(Exception):
    pass


def _tensor_sig(t: torch.Tensor) -> tuple:
    if t.is_inference():
        raise _Uncacheable
    return (id(t), t._version, t.data_ptr() if t.device.type != "meta" else 0, tuple(t.shape), t.dtype,
            str(t.device), t.requires_grad)


def _value_sig(v: Any, depth: int = 0) -> Any:
    if isinstance(v, _SCALARS):
        return (type(v).__name__, v)
    if isinstance(v, torch.Tensor):
        return _tensor_sig(v)
    if isinstance(v, (list, tuple)) and depth < 3:
        return (type(v).__name__, tuple(_value_sig(e, depth + 1) for e in v))
    if isinstance(v, dict) and depth < 3:
        return ("dict", tuple((repr(k), _value_sig(e, depth + 1)) for k, e in v.items()))
    if isinstance(v, (set, frozenset)) and depth < 3 and all(isinstance(e, _SCALARS) for e in v):
        return ("set", tuple(sorted(map(repr, v))))
    return ("id", id(v))


def fingerprint(model: nn.Module) -> tuple | None:
    """Everything about ``model`` that its forward can depend on (see module doc); None: not cacheable."""
    try:
        parts = []
        for name, m in model.named_modules(remove_duplicate=False):
            attrs = tuple((k, _value_sig(v)) for k, v in m.__dict__.items() if k not in _SKIP)
            params = tuple((k, None if p is None else _tensor_sig(p)) for k, p in m._parameters.items())
            buffers = tuple((k, None if b is None else _tensor_sig(b)) for k, b in m._buffers.items())
            parts.append((name, id(m), type(m), attrs, params, buffers))
        return tuple(parts)
    except _Uncacheable:
        return None


class Entry:
    """Our copy of one model for one device/dtype, its captured graphs and what was learnt about them."""

    def __init__(self, print_: tuple, work: nn.Module | None) -> None:
        self.fingerprint = print_
        self.work = work                        # built by ``entry_for`` before the entry is handed out
        self.graphs: dict[tuple, Any] = {}      # (candidate name, input shape) -> Captured
        self.winner: dict[tuple, str] = {}      # input shape -> the candidate that reproduced the model
        self.probes: dict = {}                  # layer-equals-module checks (``taps.py``), by module
        self.lock = threading.Lock()


_LOCK = threading.Lock()
_ENTRIES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
_ORDER: OrderedDict[tuple, weakref.ref] = OrderedDict()   # (id(model), device, dtype) -> model, LRU


def _evict() -> None:
    while len(_ORDER) > MAX_ENTRIES:
        (mid, dev, dt), ref = _ORDER.popitem(last=False)
        model = ref()
        if model is not None and model in _ENTRIES:
            _ENTRIES[model].pop((dev, dt), None)


@contextmanager
def entry_for(model: nn.Module, device: torch.device, dtype: torch.dtype, build) -> Iterator[Entry | None]:
    """The cached entry of ``model`` (``build(model)`` -> work copy when missing or stale), held for this call;
    None when the model cannot be cached or another call is using its entry (the caller copies afresh)."""
    print_ = fingerprint(model)
    if print_ is None:
        yield None
        return
    key = (str(device), dtype)
    with _LOCK:
        per_model = _ENTRIES.setdefault(model, {})
        entry = per_model.get(key)
        if entry is not None and entry.fingerprint != print_:
            entry = None
        if entry is None:
            entry = Entry(print_, None)
            per_model[key] = entry
        _ORDER[(id(model),) + key] = weakref.ref(model)
        _ORDER.move_to_end((id(model),) + key)
        _evict()
        if not entry.lock.acquire(blocking=False):
            entry = None
    if entry is None:
        yield None
        return
    try:
        if entry.work is None:
            entry.work = build(model)
        yield entry
    finally:
        entry.lock.release()


def clear_cache() -> None:
    """Drop every cached model copy and graph (frees their memory, e.g. on the GPU)."""
    with _LOCK:
        _ENTRIES.clear()
        _ORDER.clear()
