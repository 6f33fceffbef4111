"""zennit 0.5 as the benchmarks run it: the same rules as our presets (timing and memory only).

ε: Epsilon on convolutions and dense layers; epsilon-plus: ZPlus ignoring biases on convolutions
(our z⁺), Epsilon on dense layers; alpha1-beta0: AlphaBeta(1, 0) everywhere. Activations pass,
average pooling uses Norm. The seed-003 ResNet gets the pre-activation canonizer of ``zennit_preact.py``;
MONAI's nets ``SequentialMergeBatchNorm`` (their residual adds stay plain gradients in zennit).
The model is deep-copied once with in-place activations off (zennit's hooks cannot see through them).
"""
from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))
from bench_nets import target_index  # noqa: E402

from zennit_standin import import_zennit  # noqa: E402

zennit = import_zennit()
import zennit.rules as zr  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import LayerMapComposite  # noqa: E402
from zennit.types import Activation, AvgPool, Convolution, Linear  # noqa: E402


def _layer_map(preset: str | None) -> list:
    if preset is None:
        conv, dense = zr.Epsilon(epsilon=1e-6), zr.Epsilon(epsilon=1e-6)
    elif preset == "epsilon-plus":
        conv, dense = zr.ZPlus(zero_params="bias"), zr.Epsilon(epsilon=1e-6)
    elif preset == "alpha1-beta0":
        conv, dense = zr.AlphaBeta(1.0, 0.0), zr.AlphaBeta(1.0, 0.0)
    else:
        raise ValueError(f"no zennit counterpart for preset {preset!r}")
    return [(Activation, zr.Pass()), (AvgPool, zr.Norm()), (Convolution, conv), (Linear, dense)]


def zennit_step(net: str, model: Any, x: Any, preset: str | None) -> Callable[[], Any]:
    """One zennit attribution of the benchmark's output (``bench_nets.target_index``), seeded with its value."""
    import torch

    work = copy.deepcopy(model)
    for m in work.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    if net == "preact":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from zennit_preact import PreActResNetCanonizer

        canonizers = [PreActResNetCanonizer()]
    else:  # MONAI's blocks are no Sequential conv -> BN chains (DenseNet's would be merged wrongly)
        canonizers = []
    composite = LayerMapComposite(layer_map=_layer_map(preset), canonizers=canonizers)

    index = target_index(net)

    def seed(out: torch.Tensor) -> torch.Tensor:
        w = torch.zeros_like(out)
        w[:, index] = 1
        return out * w

    def step() -> Any:
        with Gradient(model=work, composite=composite) as attributor:
            _, relevance = attributor(x, attr_output=seed)
        return relevance
    return step
