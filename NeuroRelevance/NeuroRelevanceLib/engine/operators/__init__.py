"""Operator kinds: one small class per kind, and the registry that classifies a graph node.

Each kind (``base.Op`` subclass) declares the torch targets it handles, what it keeps from the forward
pass and its relevance step; see docs/engine.md, "Adding an operator". ``classify`` asks the registered
kinds in order (kinds registered with ``register_operator`` first, so they can take over a target);
a node no kind claims is ``Unknown`` (refused with a ``pass_through=`` hint).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch.fx as fx

from .base import Meta, Op, Unknown, UnsupportedOperatorError, Walk, unsupported_error, vjp
from .linear import BatchNorm, Linear, MatMul
from .pooling import MaxPool, ZRule
from .routing import (
    Clip,
    Identity,
    Input,
    Pass,
    PassOrStrip,
    PassThrough,
    PassThroughGrad,
    PassThroughMix,
    Reshape,
    Route,
    Strip,
    TupleGet,
    getitem_kind,
)
from .sums import Difference, ReverseDifference, Scale, Sum

BUILTIN: tuple[type[Op], ...] = (Linear, MatMul, BatchNorm, PassOrStrip, Strip, Clip, Pass, Reshape, MaxPool, Route,
                                 ZRule, Sum, Difference, ReverseDifference, Scale, Meta)
_LOCK = threading.Lock()
_ADDED: tuple[type[Op], ...] = ()


def registered() -> tuple[type[Op], ...]:
    """The kinds ``classify`` asks, in order."""
    return _ADDED + BUILTIN


def register_operator(cls: type[Op]) -> type[Op]:
    """Add an operator kind (usable as a class decorator); it is asked before the built-in kinds."""
    global _ADDED
    if not (isinstance(cls, type) and issubclass(cls, Op)):
        raise TypeError(f"register_operator takes an Op subclass, not {cls!r}.")
    with _LOCK:
        _ADDED = (cls,) + tuple(c for c in _ADDED if c is not cls)
    return cls


def unregister_operator(cls: type[Op]) -> None:
    """Remove a kind added with ``register_operator``."""
    global _ADDED
    with _LOCK:
        _ADDED = tuple(c for c in _ADDED if c is not cls)


@contextmanager
def operators_added(*classes: type[Op]) -> Iterator[None]:
    """Register ``classes`` for the duration of a ``with`` block."""
    for cls in classes:
        register_operator(cls)
    try:
        yield
    finally:
        for cls in classes:
            unregister_operator(cls)


def classify(node: fx.Node, module: Any = None) -> type[Op]:
    """The kind of an input-dependent fx node (``Unknown`` when no kind claims it)."""
    if node.op == "placeholder":
        return Input
    for cls in registered():
        if cls.claims(node, module):
            return cls
    return Unknown


__all__ = ["Op", "Walk", "Input", "Pass", "Clip", "PassOrStrip", "Strip", "Reshape", "Route", "TupleGet", "Identity",
           "PassThrough", "PassThroughGrad", "PassThroughMix", "ZRule", "MaxPool", "Sum", "Difference",
           "ReverseDifference", "Scale", "MatMul", "Meta", "Unknown", "Linear",
           "BatchNorm", "UnsupportedOperatorError", "unsupported_error", "vjp", "classify", "registered",
           "register_operator", "unregister_operator", "operators_added", "getitem_kind"]
