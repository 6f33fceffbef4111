"""Reference 3D architectures from the seed papers, as importable classes with plain keyword arguments.

- :class:`DeepTaylorCNN`  seed 000: conv-ReLU-conv-BN-ReLU-avgpool blocks (brain age / AD classifier)
- :class:`PreActResNet3d` seed 003: pre-activation residual units with ``a + b`` adds (brain-age regressor)
- :class:`UNet3d`         seed 001: multi-channel U-Net, ``torch.cat`` skips, ``ConvTranspose3d`` (lesions)

``build(name, **kwargs)`` rebuilds any of them from a model card; ``ARCHITECTURES`` lists them;
``model.config`` gives the kwargs to store; ``spec``/``from_spec`` write and read a card's entry.
"""
from __future__ import annotations

from ._common import parameter_count
from .deep_taylor_cnn import DeepTaylorCNN
from .preact_resnet import PreActResNet3d, PreActUnit
from .registry import ARCHITECTURES, build, from_spec, kwargs_of, resolve, spec
from .unet import DoubleConv, UNet3d

__all__ = ["ARCHITECTURES", "DeepTaylorCNN", "DoubleConv", "PreActResNet3d", "PreActUnit", "UNet3d", "build",
           "from_spec", "kwargs_of", "parameter_count", "resolve", "spec"]
