"""``UNet3d``: the multi-channel 3D U-Net lesion segmenter of seed 001 (Çiçek et al. 2016).

Encoder levels of two ``conv -> [norm] -> ReLU`` layers separated by pooling; decoder levels that
upsample with ``ConvTranspose3d`` (kernel = stride = the pooling factor), join the encoder feature
map of the same level with ``torch.cat`` along channels, and apply two more conv layers; a final
1×1×1 convolution gives per-voxel class logits. Activations are ``F.relu`` and pooling is
``F.max_pool3d`` / ``F.avg_pool3d``, so the graph holds functional ops, concatenations and
transposed convolutions — the cases LRP tools built around ``nn.Sequential`` trip on.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._common import ConfigMixin, check_batch, choice, int_tuple, is_concrete, positive_int

_NORMS = (None, "batch", "instance")


def _norm(kind: str | None, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    return nn.Identity()


class DoubleConv(nn.Module):
    """Two ``conv(3×3×3) -> norm -> ReLU`` layers (norm is ``nn.Identity`` when ``norm=None``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None, bias: bool, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel_size, padding=pad, bias=bias)
        self.norm1 = _norm(norm, out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel_size, padding=pad, bias=bias)
        self.norm2 = _norm(norm, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply both conv layers."""
        x = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(x)))


class UNet3d(ConfigMixin, nn.Module):
    """Seed-001 3D U-Net with concatenation skips and transposed-convolution upsampling.

    Args:
        in_channels: input channels (seed 001: 6 perfusion/diffusion maps).
        n_classes: output channels = per-voxel class logits (2: background, lesion).
        features: channels per level, encoder top to bottleneck; ``len(features) - 1`` poolings.
        norm: ``None``, ``"batch"`` or ``"instance"`` after every convolution.
        bias: give convolutions a bias (``False`` for bias-free variants).
        pool: ``"max"`` or ``"avg"`` downsampling.
        pool_size: pooling / upsampling factor, one int or one per axis (D, H, W); e.g. ``(1, 2, 2)``
            keeps the depth of thin slabs such as seed 001's 19-slice volumes.
        kernel_size: odd cubic kernel of the convolutions.

    Input ``(N, in_channels, D, H, W)`` with each side divisible by ``pool_size ** (len(features)-1)``;
    output ``(N, n_classes, D, H, W)`` logits (no softmax).
    """

    def __init__(self, in_channels: int = 6, n_classes: int = 2, features: Sequence[int] = (16, 32, 64, 128),
                 norm: str | None = None, bias: bool = True, pool: str = "max",
                 pool_size: int | Sequence[int] = 2, kernel_size: int = 3) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = positive_int("in_channels", in_channels, name)
        n_classes = positive_int("n_classes", n_classes, name)
        feats = int_tuple("features", features, name)
        if len(feats) < 2:
            raise ValueError(f"{name}: features needs at least 2 levels (one pooling), got {list(feats)}.")
        choice("norm", norm, _NORMS, name)
        choice("pool", pool, ("max", "avg"), name)
        sizes = (pool_size,) * 3 if isinstance(pool_size, int) else pool_size
        pd, ph, pw = int_tuple("pool_size", sizes, name, length=3)
        psize = (pd, ph, pw)
        kernel_size = positive_int("kernel_size", kernel_size, name)
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be odd for 'same' padding, got {kernel_size}.")
        self._record(in_channels=in_channels, n_classes=n_classes, features=feats, norm=norm, bias=bool(bias),
                     pool=pool, pool_size=pool_size if isinstance(pool_size, int) else psize,
                     kernel_size=kernel_size)
        self.in_channels = in_channels
        self.pool_size = psize
        self.pool = pool
        self.divisor = tuple(p ** (len(feats) - 1) for p in psize)
        self.encoder = nn.ModuleList()
        c_in = in_channels
        for f in feats:
            self.encoder.append(DoubleConv(c_in, f, norm, bool(bias), kernel_size))
            c_in = f
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for f_low, f_high in zip(reversed(feats[:-1]), reversed(feats[1:]), strict=True):
            self.upsample.append(nn.ConvTranspose3d(f_high, f_low, psize, stride=psize, bias=bool(bias)))
            self.decoder.append(DoubleConv(2 * f_low, f_low, norm, bool(bias), kernel_size))
        self.head = nn.Conv3d(feats[0], n_classes, 1, bias=bool(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-voxel logits ``(N, n_classes, D, H, W)``."""
        if not torch.jit.is_scripting() and is_concrete(x):
            check_batch(x, self.in_channels, type(self).__name__, divisor=self.divisor)
        skips: list[torch.Tensor] = []
        last = len(self.encoder) - 1
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < last:
                skips.append(x)
                x = F.max_pool3d(x, self.pool_size) if self.pool == "max" else F.avg_pool3d(x, self.pool_size)
        for i, (up, block) in enumerate(zip(self.upsample, self.decoder, strict=True)):
            x = torch.cat([skips[-1 - i], up(x)], dim=1)
            x = block(x)
        return self.head(x)
