"""``PreActResNet3d``: the pre-activation 3D ResNet of seed 003 (He et al. 2016b, made 3D).

A stem convolution, then stages of pre-activation residual units
``out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut`` written with ``F.relu`` and ``a + b``
(no wrapper modules), a final ``BN -> ReLU``, a global average over space (``x.mean``) and a
linear head. Seed 003: 5 stages with 3, 4, 6, 4, 3 units and 8, 16, 32, 64, 128 channels
(about 3.7 M parameters); the first unit of every later stage halves the resolution with stride 2
and a 1×1×1 projection shortcut on the pre-activated input.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._common import ConfigMixin, check_batch, choice, int_tuple, is_concrete, positive_int


class PreActUnit(nn.Module):
    """One pre-activation residual unit: ``BN-ReLU-conv-BN-ReLU-conv`` plus an identity or projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = True,
                 kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.bn1 = nn.BatchNorm3d(in_channels)
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=bias)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel_size, padding=pad, bias=bias)
        self.shortcut: nn.Conv3d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual unit output; the add is a plain ``a + b``."""
        pre = F.relu(self.bn1(x))
        identity = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + identity


class PreActResNet3d(ConfigMixin, nn.Module):
    """Seed-003 pre-activation 3D ResNet for regression (brain age) or classification.

    Args:
        in_channels: input channels.
        n_outputs: outputs of the linear head; ``None`` gives 1 for ``task="regression"``, 2 for
            ``task="classification"``.
        widths: channels of each stage (seed 003: 8, 16, 32, 64, 128).
        units: residual units per stage, same length as ``widths`` (seed 003: 3, 4, 6, 4, 3).
        task: ``"regression"`` or ``"classification"``; only sets the default ``n_outputs`` and is
            recorded for model cards. The output is always raw (no softmax).
        bias: give convolutions and the head a bias (``False`` for bias-free variants).
        kernel_size: odd cubic kernel of the residual convolutions and the stem.
        stem_stride: stride of the stem convolution (1 as in seed 003; 2 halves memory).

    Input ``(N, in_channels, D, H, W)``; output ``(N, n_outputs)``.
    """

    def __init__(self, in_channels: int = 1, n_outputs: int | None = None,
                 widths: Sequence[int] = (8, 16, 32, 64, 128), units: Sequence[int] = (3, 4, 6, 4, 3),
                 task: str = "regression", bias: bool = True, kernel_size: int = 3, stem_stride: int = 1) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = positive_int("in_channels", in_channels, name)
        choice("task", task, ("regression", "classification"), name)
        if n_outputs is None:
            n_outputs = 1 if task == "regression" else 2
        n_outputs = positive_int("n_outputs", n_outputs, name)
        widths_t = int_tuple("widths", widths, name)
        units_t = int_tuple("units", units, name, length=len(widths_t))
        kernel_size = positive_int("kernel_size", kernel_size, name)
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be odd for 'same' padding, got {kernel_size}.")
        stem_stride = positive_int("stem_stride", stem_stride, name)
        self._record(in_channels=in_channels, n_outputs=n_outputs, widths=widths_t, units=units_t, task=task,
                     bias=bool(bias), kernel_size=kernel_size, stem_stride=stem_stride)
        self.in_channels = in_channels
        self.stem = nn.Conv3d(in_channels, widths_t[0], kernel_size, stride=stem_stride, padding=kernel_size // 2,
                              bias=bool(bias))
        stages = []
        c_in = widths_t[0]
        for s, (width, n_units) in enumerate(zip(widths_t, units_t, strict=True)):
            stage = []
            for u in range(n_units):
                stride = 2 if (s > 0 and u == 0) else 1
                stage.append(PreActUnit(c_in, width, stride=stride, bias=bool(bias), kernel_size=kernel_size))
                c_in = width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.bn_final = nn.BatchNorm3d(c_in)
        self.head = nn.Linear(c_in, n_outputs, bias=bool(bias))
        self.min_size = stem_stride * 2 ** (len(widths_t) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, n_outputs)`` for a batch ``(N, C, D, H, W)``."""
        if not torch.jit.is_scripting() and is_concrete(x):
            check_batch(x, self.in_channels, type(self).__name__, min_size=self.min_size)
        x = self.stages(self.stem(x))
        x = F.relu(self.bn_final(x))
        x = x.mean(dim=(2, 3, 4))
        return self.head(x)
