"""The cohort decomposition's activation collection (seed 003) on the batch executor.

:func:`distributed_collector` returns a drop-in replacement for ``cohort.collect_activations``: the
subjects are split into chunks of ``batch_size``; each chunk is a task in which the worker's own
copy of the model (loaded once per worker from the model file) runs ``collect_activations`` on
it; the chunks are put back together in subject order. The first subject is also run here on the
caller's model, and the workers' network output must match it, so a different model file is
caught instead of decomposing the wrong network's activations.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..vocabulary import OptionError
from .executor import LOST
from .worker import ModelSource, worker_model


def activation_chunk(chunk: list, source: ModelSource, layer: str | None, batch_size: int,
                     load: Callable | None, to_input: Callable | None):
    """The task: activations of the subjects ``chunk`` ([(index, source)]) with this worker's model."""
    from ..cohort.activations import collect_activations

    loaded = worker_model(source)
    return collect_activations(loaded.model, [item for _, item in chunk], layer=layer, batch_size=batch_size,
                               device=loaded.device, load=load, to_input=to_input)


def distributed_collector(executor: Any, source: ModelSource) -> Callable:
    """A ``collect_activations``-compatible function that runs on ``executor``'s workers."""

    def collect(model, sources: Sequence, layer: str | None = None, batch_size: int = 4, device: Any = None,
                load: Callable | None = None, to_input: Callable | None = None,
                progress: Callable[[int, int], None] | None = None):
        import torch

        from ..cohort.activations import Activations, collect_activations

        n = len(sources)
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}.")
        if n == 0:
            raise InputError("no subjects were given; pass at least one volume.")
        check = collect_activations(model, sources[:1], layer=layer, batch_size=1, device=device or "cpu",
                                    load=load, to_input=to_input)
        layer = layer or check.layer  # resolved once here, so every chunk decomposes the same layer
        indexed = list(enumerate(sources))
        chunks = [indexed[i:i + batch_size] for i in range(0, n, batch_size)]
        parts: dict[int, Any] = {}
        finished = 0
        for chunk, part in executor.run(activation_chunk, chunks, source, layer, batch_size, load, to_input):
            if part == LOST:
                raise OptionError("The workers died repeatedly while collecting the activations of subjects "
                                  f"{chunk[0][0]}-{chunk[-1][0]} (out of memory?); use a smaller ",
                                  ("batch_size", None, "--batch-size"), ".")
            parts[chunk[0][0]] = part
            finished += len(chunk)
            if progress is not None:
                progress(finished, n)
        ordered = [parts[k] for k in sorted(parts)]
        outputs = torch.cat([p.outputs for p in ordered])
        if not np.allclose(outputs[:1].numpy(), check.outputs.numpy(), rtol=1e-4, atol=1e-5):
            raise InputError(f"The workers' model ({source.path}) does not give this model's output on the first "
                             "subject; load the same model file here and on the workers.")
        first = ordered[0]
        return Activations(torch.cat([p.tensor for p in ordered]), first.layer, first.layer_shape,
                           first.input_shape, outputs)

    return collect
