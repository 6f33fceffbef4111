"""Small 3D test networks shared by the engine tests (no tests here; bias-free variants for closed forms)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphNet(nn.Module):
    """Residual add, concat skip, max/avg pooling, ConvTranspose3d, trilinear upsampling, functional relu."""

    def __init__(self, cin: int = 2, classes: int = 3, bias: bool = False, bn: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv3d(cin, 4, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm3d(4) if bn else nn.Identity()
        self.res = nn.Conv3d(4, 4, 3, padding=1, bias=bias)
        self.down = nn.Conv3d(4, 6, 3, stride=2, padding=1, bias=bias)
        self.up = nn.ConvTranspose3d(6, 4, 2, stride=2, bias=bias)
        self.fuse = nn.Conv3d(8, 4, 1, bias=bias)
        self.head = nn.Linear(4, classes, bias=bias)

    def forward(self, x):
        a = F.relu(self.bn(self.stem(x)))
        a = a + F.relu(self.res(a))                      # residual add
        d = F.relu(self.down(a))
        d = F.interpolate(F.max_pool3d(d, 2), scale_factor=2.0, mode="trilinear")
        u = F.relu(self.up(d))
        y = F.relu(self.fuse(torch.cat([a, u], dim=1)))   # concat skip
        return self.head(F.adaptive_avg_pool3d(y, 1).flatten(1))


class SegNet(nn.Module):
    """Tiny encoder-decoder with a 2-channel voxelwise output (segmentation)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv3d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2)
        self.mid = nn.Conv3d(4, 4, 3, padding=1)
        self.upc = nn.ConvTranspose3d(4, 4, 2, stride=2)
        self.out = nn.Conv3d(8, 2, 1)

    def forward(self, x):
        e = torch.relu(self.enc(x))
        m = torch.relu(self.mid(self.pool(e)))
        return self.out(torch.cat([e, torch.relu(self.upc(m))], 1))


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv3d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        return self.fc(self.features(x))


def make(model: nn.Module, seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, std=0.4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.to(dtype).eval()
