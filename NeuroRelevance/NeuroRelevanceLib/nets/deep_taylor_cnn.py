"""``DeepTaylorCNN``: the brain-age / AD classifier of seed 000 (after Cole et al.'s PAC network).

Repeated blocks of ``Conv3d -> ReLU -> Conv3d -> BatchNorm3d -> ReLU -> AvgPool3d(2)``, then a
global average pool and a linear layer with ``n_outputs`` logits (seed 000: four blocks with
8, 16, 32, 64 channels and three age bins). Everything is an ``nn.Module`` inside ``nn.Sequential``
containers, so the network is also a plain sequential model for tools that need one.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn as nn

from ._common import ConfigMixin, check_batch, choice, int_tuple, is_concrete, positive_int


def _block(c_in: int, c_out: int, kernel_size: int, bias: bool, batchnorm: bool, pool: str) -> nn.Sequential:
    """One seed-000 block: conv-ReLU-conv-BN-ReLU-pool (BN left out when ``batchnorm`` is False)."""
    pad = kernel_size // 2
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv3d(c_in, c_out, kernel_size, padding=pad, bias=bias)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv3d(c_out, c_out, kernel_size, padding=pad, bias=bias)),
    ]
    if batchnorm:
        layers.append(("bn", nn.BatchNorm3d(c_out)))
    layers.append(("relu2", nn.ReLU()))
    layers.append(("pool", nn.AvgPool3d(2) if pool == "avg" else nn.MaxPool3d(2)))
    return nn.Sequential(OrderedDict(layers))


class DeepTaylorCNN(ConfigMixin, nn.Module):
    """Seed-000 3D CNN: ``len(channels)`` conv-ReLU-conv-BN-ReLU-avgpool blocks, global pool, linear head.

    Args:
        in_channels: input channels (1 for a grey-matter map).
        n_outputs: number of output logits (3 age bins in seed 000; 2 for AD vs control).
        channels: output channels of each block; its length is the number of blocks.
        kernel_size: odd cubic kernel size of every convolution ("same" padding).
        bias: give convolutions and linear layers a bias (``False`` for bias-free variants).
        batchnorm: include the BatchNorm3d of each block.
        hidden: width of an extra ``Linear -> ReLU`` before the output layer (0: none).
        pool: ``"avg"`` (seed 000) or ``"max"`` pooling at the end of each block.

    Input ``(N, in_channels, D, H, W)`` with each spatial size >= ``2 ** len(channels)``;
    output ``(N, n_outputs)`` logits (no softmax).
    """

    def __init__(self, in_channels: int = 1, n_outputs: int = 3, channels: Sequence[int] = (8, 16, 32, 64),
                 kernel_size: int = 3, bias: bool = True, batchnorm: bool = True, hidden: int = 0,
                 pool: str = "avg") -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = positive_int("in_channels", in_channels, name)
        n_outputs = positive_int("n_outputs", n_outputs, name)
        chans = int_tuple("channels", channels, name)
        kernel_size = positive_int("kernel_size", kernel_size, name)
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be odd for 'same' padding, got {kernel_size}.")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"{name}: hidden must be an integer >= 0, got {hidden!r}.")
        choice("pool", pool, ("avg", "max"), name)
        self._record(in_channels=in_channels, n_outputs=n_outputs, channels=chans, kernel_size=kernel_size,
                     bias=bool(bias), batchnorm=bool(batchnorm), hidden=hidden, pool=pool)
        self.in_channels = in_channels
        blocks = []
        c_in = in_channels
        for i, c in enumerate(chans):
            blocks.append((f"block{i + 1}", _block(c_in, c, kernel_size, bool(bias), bool(batchnorm), pool)))
            c_in = c
        self.features = nn.Sequential(OrderedDict(blocks))
        self.global_pool = nn.AdaptiveAvgPool3d(1)
        self.flatten = nn.Flatten(1)
        head: list[tuple[str, nn.Module]] = []
        if hidden:
            head += [("fc_hidden", nn.Linear(c_in, hidden, bias=bool(bias))), ("relu", nn.ReLU())]
            c_in = hidden
        head.append(("fc", nn.Linear(c_in, n_outputs, bias=bool(bias))))
        self.head = nn.Sequential(OrderedDict(head))
        self.min_size = 2 ** len(chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_outputs)`` for a batch ``(N, C, D, H, W)``."""
        if not torch.jit.is_scripting() and is_concrete(x):
            check_batch(x, self.in_channels, type(self).__name__, min_size=self.min_size)
        x = self.features(x)
        x = self.flatten(self.global_pool(x))
        return self.head(x)

