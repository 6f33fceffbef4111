"""zennit set-up for NeuroRelevanceLib.nets.PreActResNet3d (benchmark and oracle use only, never the product).

zennit's ResNet canonizer only recognises torchvision's ``BasicBlock``/``Bottleneck``. Our
pre-activation unit adds its branches with a bare ``a + b`` and the net averages with ``x.mean``,
both invisible to zennit's module hooks (autograd would hand the full relevance to both summands
and spread it uniformly through the mean). This canonizer, built from zennit's
``AttributeCanonizer``, swaps in forwards that route the add through ``zennit.layer.Sum`` (rule:
``Norm``, proportional split) and the mean through an ``AdaptiveAvgPool3d`` module (rule: ``Norm``).
BatchNorm layers stay standalone — in a pre-activation net they follow an add, not a convolution,
so nothing can be merged — and get zennit's ``Pass`` rule (R_in = R_out).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))
from NeuroRelevanceLib.nets import PreActResNet3d, PreActUnit  # noqa: E402
from zennit_standin import import_zennit  # noqa: E402

zennit = import_zennit()
from zennit.canonizers import AttributeCanonizer  # noqa: E402
from zennit.layer import Sum  # noqa: E402


def _unit_forward(self: PreActUnit, x: torch.Tensor) -> torch.Tensor:
    pre = F.relu(self.bn1(x))
    identity = self.shortcut(pre) if self.shortcut is not None else x
    out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
    return self.canonizer_sum(torch.stack([identity, out], dim=-1))


def _net_forward(self: PreActResNet3d, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(self.bn_final(self.stages(self.stem(x))))
    return self.head(torch.flatten(self.canonizer_pool(x), 1))


class PreActResNetCanonizer(AttributeCanonizer):
    """Makes the residual adds and the global mean of a PreActResNet3d visible to zennit's rules."""

    def __init__(self) -> None:
        super().__init__(self._attribute_map)

    @staticmethod
    def _attribute_map(name: str, module: nn.Module) -> dict[str, Any] | None:
        if isinstance(module, PreActUnit):
            return {"forward": _unit_forward.__get__(module), "canonizer_sum": Sum()}
        if isinstance(module, PreActResNet3d):
            return {"forward": _net_forward.__get__(module), "canonizer_pool": nn.AdaptiveAvgPool3d(1)}
        return None


def zennit_relevance(model: nn.Module, x: torch.Tensor, composite_name: str = "EpsilonPlusFlat",
                     epsilon: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, relevance) from zennit for ``model`` (a PreActResNet3d), seeded with the output value."""
    from zennit import composites
    from zennit.attribution import Gradient

    composite = getattr(composites, composite_name)(epsilon=epsilon, canonizers=[PreActResNetCanonizer()])
    with Gradient(model=model, composite=composite) as attributor:
        out, relevance = attributor(x, attr_output=lambda y: y)
    return out, relevance
