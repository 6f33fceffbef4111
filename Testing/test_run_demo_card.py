"""``run_demo(card=...)`` takes a model card: another model file is refused with one clear error.

A TorchScript file loads without a card (``LoadedModel.card`` is None); the demo needs the card's intended
use and recommended preset, so it refuses before it writes anything (it used to fail with an AttributeError
on ``None.use_warning`` after creating the output folder).
"""

import pytest
import torch
from torch import nn

from NeuroRelevanceLib.demo_run import run_demo
from NeuroRelevanceLib.errors import InputError

pytest.importorskip("slicer")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|load)` is deprecated:DeprecationWarning")


@pytest.mark.parametrize("make", ["torchscript", "exported"])
def test_a_model_file_without_a_card_is_refused_before_any_output(tmp_path, make):
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten()).eval()
    if make == "torchscript":
        path = tmp_path / "model.pt"
        torch.jit.script(net).save(str(path))
    else:
        path = tmp_path / "model.pt2"
        torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 6, 6, 6),)), str(path))
    out = tmp_path / "out"
    lines: list[str] = []
    with pytest.raises(InputError, match="model card"):
        run_demo(out, spacing=4.0, card=path, log=lines.append)
    assert not out.exists()
