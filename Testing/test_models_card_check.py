"""The card check (one forward on the card's input shape when a model is loaded) runs the network as it
will be used: in eval mode. A network that only fails in training mode (BatchNorm on a 1×1×1 feature map)
loads; the modules' own modes are left as they were; a network that fails for another reason is not
blamed on the card's input."""
import json

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model, save_weights
from NeuroRelevanceLib.models.card import read_card
from NeuroRelevanceLib.models.loading import _output_shape


class PooledNorm(nn.Module):
    """BatchNorm after global pooling: fails in training mode on one sample, fine in eval mode."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.norm = nn.BatchNorm3d(4)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        return self.head(self.norm(self.pool(torch.relu(self.conv(x)))).flatten(1))


class Broken(nn.Module):
    """Fails on any input, for a reason that has nothing to do with the input's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3)

    def forward(self, x):
        raise RuntimeError("division by a learned zero in the head")


def _card(folder, architecture, weights, shape=(12, 10, 8)):
    card = {"name": "check", "weights": weights, "architecture": architecture,
            "input": {"channels": ["T1"], "shape": list(shape), "spacing": [4.0, 4.0, 4.0],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["CN", "AD"]}}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_a_trusted_monai_densenet_card_loads_at_a_small_input(tmp_path):
    """Trial 7 F11: MONAI DenseNet121 at 32×40×32 was refused ("more than 1 value per channel when training")."""
    monai_nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    net = monai_nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)
    save_weights(net, tmp_path / "densenet.safetensors")
    arch = {"class": "monai.networks.nets.DenseNet121",
            "kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2}}
    loaded = load_model(_card(tmp_path, arch, "densenet.safetensors", (32, 40, 32)), trusted=True, device="cpu")
    assert not loaded.model.training and not any(m.training for m in loaded.model.modules())
    with torch.no_grad():
        assert loaded.model(torch.rand(1, 1, 32, 40, 32)).shape == (1, 2)


@pytest.mark.parametrize("saved_as", ["torchscript", "module-class"])
def test_a_network_that_fails_only_in_training_mode_passes_the_card_check(tmp_path, saved_as):
    torch.manual_seed(0)
    net = PooledNorm()
    if saved_as == "torchscript":  # saved in training mode, as people do
        torch.jit.save(torch.jit.script(net.train()), str(tmp_path / "net.ts"))
        card = _card(tmp_path, None, "net.ts")
    else:
        save_weights(net, tmp_path / "net.safetensors")
        card = _card(tmp_path, {"class": f"{__name__}.PooledNorm", "kwargs": {}}, "net.safetensors")
    loaded = load_model(card, trusted=True, device="cpu")
    assert not loaded.model.training


def test_the_card_check_leaves_each_module_in_its_own_mode(tmp_path):
    net = PooledNorm().train()
    net.conv.eval()  # a user's mixed modes (e.g. a frozen encoder)
    card = read_card(_card(tmp_path, None, "x.ts"))
    assert _output_shape(net, card, meta=False) == (1, 2)
    assert net.training and net.norm.training and net.head.training and not net.conv.training
    assert net.norm.num_batches_tracked.item() == 0  # no training step was taken on the test input


def test_a_network_failing_for_another_reason_is_not_blamed_on_the_card_input(tmp_path):
    card = read_card(_card(tmp_path, None, "x.ts"))
    with pytest.raises(InputError) as info:
        _output_shape(Broken(), card, meta=False)
    text = str(info.value)
    assert "division by a learned zero" in text and "does not accept the card's input" not in text
    with pytest.raises(InputError) as info:  # a real channel mismatch still names the card's input
        _output_shape(nn.Sequential(nn.Conv3d(2, 2, 3)), card, meta=False)
    assert "input.channels" in str(info.value) and "2 channels" in str(info.value)
