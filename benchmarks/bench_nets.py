"""The networks, inputs and presets of the engine benchmarks (``bench_engine.py``, ``bench_gpu.py``).

Weights are random (seeded); every BatchNorm gets non-trivial running statistics, as in a trained net.
"""
from __future__ import annotations

from typing import Any

#: name -> (label, input channels)
NETS = {
    "preact": ("brain-age ResNet (tensor-decomposition paper)", 1),
    "resnet18": ("MONAI resnet18", 1),
    "densenet121": ("MONAI DenseNet121", 1),
    "unet": ("MONAI UNet", 1),
}
#: the table's rows: (network, input size D×H×W)
ROWS = [("preact", (96, 112, 96)), ("preact", (160, 192, 160)), ("resnet18", (96, 112, 96)),
        ("densenet121", (96, 112, 96)), ("unet", (128, 128, 128))]
#: 1 mm MNI grid (the GPU heatmap)
ONE_MM = (182, 218, 182)
PRESETS = (None, "epsilon-plus", "alpha1-beta0")


def preset_label(preset: str | None) -> str:
    return "ε" if preset is None else preset


def _network(name: str) -> Any:
    if name == "preact":
        from NeuroRelevanceLib import nets

        return nets.build("PreActResNet3d", seed=0)
    from monai.networks import nets as mn

    if name == "resnet18":
        return mn.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2)
    if name == "densenet121":
        return mn.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)
    if name == "unet":
        return mn.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                       strides=(2, 2, 2, 2), num_res_units=2)
    raise SystemExit(f"unknown network {name!r}; use one of {', '.join(NETS)}")


def build(name: str, size: tuple, device: Any = "cpu", seed: int = 0) -> tuple[Any, Any]:
    """(model in eval mode, input (1, C, *size)) on ``device``."""
    import torch

    torch.manual_seed(seed)
    model = _network(name)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                    m.bias.copy_(0.05 * torch.randn(m.num_features, generator=gen))
    x = torch.rand((1, NETS[name][1]) + tuple(size), generator=gen)
    return model.eval().to(device), x.to(device)


def target_index(name: str) -> int:
    """The explained output: the regression output of the brain-age ResNet, class/channel 1 of the others."""
    return 0 if name == "preact" else 1


def explain_kwargs(name: str, x: Any) -> dict:
    """What ``explain`` is asked: the regression output, class 1 of a classifier, or a segmenter's channel 1
    over the whole volume."""
    import torch

    if name == "unet":
        return {"target": 1, "mask": torch.ones(x.shape[2:], device=x.device)}
    return {"target": target_index(name)}
