"""How far relevance totals legitimately exceed the explained value: |ΣR| / |f| per network × preset.

Measures the range behind the engine's refusal bound (``engine/validate.py``, ``INFLATED_REFUSE``):
MONAI 1.6.1 networks at the coverage matrix's sizes (``Testing/monai_nets.py``: random biases and
BatchNorm statistics, like trained nets) and at MONAI's default initialisation (the trial's zoo), and the
suite's hand-written nets, float32 as users run them. A run the engine refuses prints its ratio from the
error message. ``python benchmarks/bench_inflation.py [--float64]`` (about 2 min on one core).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))


def _zoo() -> dict:
    from monai.networks import nets

    return {
        "SegResNet-default": (lambda: nets.SegResNet(spatial_dims=3, in_channels=1, out_channels=2, init_filters=8),
                              (1, 1, 16, 16, 16)),
        "BasicUNet-default": (lambda: nets.BasicUNet(3, 1, 2, features=(4, 4, 8, 16, 32, 4)), (1, 1, 32, 32, 32)),
        "DenseNet121-default": (lambda: nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2),
                                (1, 1, 32, 32, 32)),
        "resnet10-default": (lambda: nets.resnet10(spatial_dims=3, n_input_channels=1, num_classes=2),
                             (1, 1, 32, 32, 32)),
        "UNet-default": (lambda: nets.UNet(3, 1, 2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1),
                         (1, 1, 16, 16, 16)),
    }


def _ratio(obj, x, dtype, **kw) -> str:
    from NeuroRelevanceLib.engine import PRESETS, explain

    cells = []
    for preset in PRESETS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                e = explain(obj, x, preset=preset, dtype=dtype, **kw)
            ratio = float(e.relevance.flatten(1).sum(1).abs().max() / e.target_value.abs().max())
            cells.append(f"{ratio:.3g}")
        except ValueError as exc:
            cells.append(f"refused ({type(exc).__name__})")
    return " | ".join(cells)


def main() -> None:
    import monai_nets as mn
    from NeuroRelevanceLib.engine import PRESETS

    torch.set_num_threads(1)
    dtype = torch.float64 if "--float64" in sys.argv else torch.float32
    print("| network | " + " | ".join(PRESETS) + " |")
    print("|---" * (len(PRESETS) + 1) + "|")
    for name in [n for n in mn.NETS if n != "VNet"]:
        print(f"| {name} (matrix) | {_ratio(mn.make(name), mn.example(name), dtype, **mn.explain_kwargs(name))} |",
              flush=True)
    for name, (build, shape) in _zoo().items():
        torch.manual_seed(0)
        model = build().eval()
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        classifier = name.startswith(("DenseNet121", "resnet10"))
        kw = dict(target=1) if classifier else dict(target=1, mask=torch.ones(shape[2:]))
        print(f"| {name} | {_ratio(model, x, dtype, **kw)} |", flush=True)


if __name__ == "__main__":
    main()
