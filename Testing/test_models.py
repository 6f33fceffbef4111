"""Loading networks: model cards + safetensors/state dicts, TorchScript, .pt2, and refused pickles."""
import json
import pickle

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import card_from_dict, load_model, read_card, save_weights
from NeuroRelevanceLib.nets import build, spec


def _card(tmp_path, model, weights="net.safetensors", **extra):
    card = {"name": "tiny", "architecture": spec(model), "weights": weights,
            "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [2, 2, 2],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]}, **extra}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    return path


@pytest.fixture
def net():
    return build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=2)


@pytest.fixture
def x():
    return torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))


def test_card_with_safetensors_reproduces_outputs(tmp_path, net, x):
    save_weights(net, tmp_path / "net.safetensors")
    loaded = load_model(_card(tmp_path, net), device="cpu")
    assert loaded.format == "card" and loaded.card.output.classes == ("control", "AD")
    assert loaded.in_channels == 1 and loaded.out_features == 2
    assert loaded.parameters == sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        assert torch.equal(loaded.model(x), net(x))
    assert "parameters on cpu" in loaded.summary()


def test_card_with_state_dict_pt(tmp_path, net, x):
    torch.save(net.state_dict(), tmp_path / "net.pt")
    loaded = load_model(_card(tmp_path, net, weights="net.pt"), device="auto")
    with torch.no_grad():
        assert torch.equal(loaded.model(x.to(loaded.device)).cpu(), net(x))


def test_torchscript_and_exported_program(tmp_path, net, x):
    torch.jit.save(torch.jit.trace(net, x), tmp_path / "net.ts")
    scripted = load_model(tmp_path / "net.ts", device="cpu")
    assert scripted.format == "torchscript"
    torch.export.save(torch.export.export(net, (x,)), tmp_path / "net.pt2")
    exported = load_model(tmp_path / "net.pt2", device="cpu")
    assert exported.format == "exported"
    with torch.no_grad():
        assert torch.allclose(scripted.model(x), net(x), atol=1e-6)
        assert torch.allclose(exported.model(x), net(x), atol=1e-6)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/neurorelevance_pwned",))


def test_untrusted_pickle_is_never_unpickled(tmp_path):
    import os
    marker = "/tmp/neurorelevance_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump(_Evil(), handle)
    with pytest.raises(InputError, match="trust"):
        load_model(path)
    assert not os.path.exists(marker)


def test_pickled_module_loads_only_when_trusted(tmp_path, x):
    model = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                          nn.Linear(2, 3))
    torch.save(model, tmp_path / "full.pt")
    with pytest.raises(InputError, match="trusted=True"):
        load_model(tmp_path / "full.pt")
    loaded = load_model(tmp_path / "full.pt", trusted=True, device="cpu")
    assert loaded.format == "pickle" and (loaded.in_channels, loaded.out_features) == (1, 3)


def test_state_dict_without_card_asks_for_one(tmp_path, net):
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(InputError, match="model card"):
        load_model(tmp_path / "weights.pt")


def test_bad_cards(tmp_path, net):
    with pytest.raises(InputError, match="valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        read_card(tmp_path / "bad.json")
    with pytest.raises(InputError) as info:
        card_from_dict({"architecture": {"class": 3}, "input": {"shape": [0, 2]},
                        "output": {"type": "banana"}})
    for fragment in ("architecture", "weights", "input.shape", "output.type"):
        assert fragment in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        load_model(_card(tmp_path, net, weights="missing.safetensors"))
    other = build("DeepTaylorCNN", in_channels=2, n_outputs=2)
    save_weights(other, tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="does not fit"):
        load_model(_card(tmp_path, net, weights="other.safetensors"))
    with pytest.raises(InputError, match="No such model file"):
        load_model(tmp_path / "nothing.json")


def test_card_roundtrip(tmp_path, net):
    card = read_card(_card(tmp_path, net))
    again = read_card(card.save(tmp_path / "again.json"))
    assert again.to_json() == card.to_json()
    assert again.input.shape == (16, 16, 16) and again.input.spacing == (2.0, 2.0, 2.0)


def test_card_naming_foreign_code_needs_trust(tmp_path):
    marker = tmp_path / "ran"
    card = {"name": "evil", "architecture": {"class": "subprocess.run",
                                             "kwargs": {"args": ["touch", str(marker)]}},
            "weights": "w.safetensors", "input": {"channels": ["T1"]}, "output": {"type": "regression"}}
    (tmp_path / "w.safetensors").write_bytes(b"")
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="trusted=True"):
        load_model(tmp_path / "card.json")
    assert not marker.exists()
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        load_model(tmp_path / "card.json", trusted=True)
    assert not marker.exists()


def test_card_can_name_a_torchscript_file_as_weights(tmp_path, net, x):
    torch.jit.save(torch.jit.trace(net, x), tmp_path / "net.ts")
    card = {"name": "scripted", "weights": "net.ts", "input": {"channels": ["T1"], "shape": [16, 16, 16]},
            "output": {"type": "classification", "classes": ["control", "AD"]}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    loaded = load_model(tmp_path / "card.json", device="cpu")
    assert loaded.format == "torchscript" and loaded.card.architecture is None
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), net(x), atol=1e-6)


def test_card_presets_are_the_engine_presets():
    from NeuroRelevanceLib.engine import PRESETS
    from NeuroRelevanceLib.models.card import PRESETS as CARD_PRESETS

    assert tuple(CARD_PRESETS) == tuple(PRESETS)
    with pytest.raises(InputError, match="recommended_preset"):
        card_from_dict({"architecture": {"class": "UNet3d"}, "weights": "w.safetensors",
                        "recommended_preset": "epsilon-minus"})
