"""Keeping a method run away from everything of the caller's (issue 13: "nothing global changes").

- ``isolated()``: grad mode on and inference mode off for this thread only, whatever the caller's
  ``torch.no_grad()`` / ``torch.inference_mode()``; TorchScript runs unoptimised in this thread, so autograd
  records plain operator nodes (guided backprop sees every ReLU) — all three are thread-local switches;
- the private copies of the model and of ``x`` come from ``explanation.working_copy`` (shared with LRP).
Module hooks registered globally (``torch.nn.modules.module.register_module_forward_hook``) are process
state that the caller chose; they are not disabled, as that would change every other thread too.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Grad on, inference mode off, TorchScript unoptimised — in this thread, for this block only."""
    with torch.inference_mode(False), torch.enable_grad(), torch.jit.optimized_execution(False):
        yield


def isolated_call(func: F) -> F:
    """Run ``func`` inside ``isolated()`` (for the public method functions)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with isolated():
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
