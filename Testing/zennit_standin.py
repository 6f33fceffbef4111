"""Import zennit in a test process without torchvision.

zennit imports ``torchvision.models.resnet.{BasicBlock, Bottleneck}`` only to use them in
isinstance checks, and no torchvision wheel works beside the CPU torch on our machines. This test
helper registers a tiny stand-in module with those two classes before zennit is imported. It lives
in the tests and benchmarks only, never in the product.
"""
from __future__ import annotations

import importlib
import sys
import types

import torch.nn as nn


def _install_torchvision_standin() -> None:
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    resnet = types.ModuleType("torchvision.models.resnet")

    class BasicBlock(nn.Module):  # stand-in: never instantiated by our code
        expansion = 1

    class Bottleneck(nn.Module):  # stand-in: never instantiated by our code
        expansion = 4

    resnet.BasicBlock = BasicBlock
    resnet.Bottleneck = Bottleneck
    models.resnet = resnet
    tv.models = models
    sys.modules.update({"torchvision": tv, "torchvision.models": models,
                        "torchvision.models.resnet": resnet})


def import_zennit() -> types.ModuleType:
    """Return the ``zennit`` package, installing the torchvision stand-in first if needed."""
    _install_torchvision_standin()
    return importlib.import_module("zennit")
