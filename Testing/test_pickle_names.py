"""What a torch.save file would import, read from its pickle opcodes (models/pickle_names.py), never by unpickling.

Crafted length fields allocate nothing, torch's own weights-only allow-list decides what a state dict may
name (uint16 / float8 tensors, torch.Size), and the pickle machine's stack is followed, so a decoy string
left below a STACK_GLOBAL's real operands is not read as its operands.
"""
from __future__ import annotations

import json
import pickle
import struct
import sys
import tracemalloc
import zipfile

import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.models.model_files import UntrustedFileError
from NeuroRelevanceLib.models.pickle_names import pickled_names, pickled_objects, reviewed_data_name

ADD_ARCHITECTURE = 'add "architecture" to the card'


def _card(folder, weights: str) -> object:
    card = {"name": "crafted", "weights": weights,
            "input": {"channels": ["T1"], "shape": [8, 8, 8], "spacing": [2.0, 2.0, 2.0],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "untrained"}
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def _huge_bytes(length: int) -> bytes:
    """A legacy-layout torch file of 11 bytes: PROTO 2, BINBYTES8 with a length field of ``length``."""
    return b"\x80\x02\x8e" + struct.pack("<Q", length)


@pytest.mark.parametrize("length", [sys.maxsize, 2**36])
@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_a_crafted_length_field_is_one_refusal_and_allocates_nothing(tmp_path, length, layout):
    weights = tmp_path / "model.pt"
    if layout == "legacy":
        weights.write_bytes(_huge_bytes(length))
    else:
        with zipfile.ZipFile(weights, "w") as archive:
            archive.writestr("model/data.pkl", _huge_bytes(length))
    card = _card(tmp_path, "model.pt")
    tracemalloc.start()
    try:
        with pytest.raises(InputError):
            load_model(card, device="cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak


@pytest.mark.parametrize("tensors", [
    {"w": torch.zeros(4, dtype=torch.uint16)},
    {"w": torch.zeros(3).to(torch.float8_e4m3fn), "b": torch.zeros(2).to(torch.float8_e5m2)},
    {"w": torch.zeros(2, 3), "shape": torch.Size([2, 3])},
    {"w": torch.zeros(2, dtype=torch.bfloat16), "device": torch.device("cpu")},
], ids=["uint16", "float8", "torch.Size", "bfloat16+device"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_state_dicts_of_any_dtype_ask_for_the_architecture(tmp_path, tensors, legacy, trusted):
    if legacy and any(t.dtype in (torch.uint16, torch.float8_e4m3fn) for t in tensors.values()
                      if isinstance(t, torch.Tensor)):
        pytest.skip("torch's legacy layout cannot read these dtypes back itself")
    torch.save(tensors, tmp_path / "weights.pt", _use_new_zipfile_serialization=not legacy)
    assert torch.load(tmp_path / "weights.pt", weights_only=True).keys() == tensors.keys()  # torch's own oracle
    assert pickled_objects(tmp_path / "weights.pt") is None
    assert all(reviewed_data_name(n) for n in pickled_names(tmp_path / "weights.pt"))  # the list for another torch
    with pytest.raises(InputError) as info:
        load_model(_card(tmp_path, "weights.pt"), trusted=trusted, device="cpu")
    assert ADD_ARCHITECTURE in str(info.value), info.value


def _decoy(marker) -> bytes:
    """Push 'os' 'system' 'collections' 'OrderedDict', pop the last two: STACK_GLOBAL imports os.system."""
    def text(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()
    return (b"\x80\x04" + text("os") + text("system") + text("collections") + text("OrderedDict") + b"00"
            + b"\x93" + text(f"touch {marker}") + b"\x85R.")


def test_a_decoy_below_stack_global_is_read_as_what_it_imports(tmp_path):
    marker = tmp_path / "marker"
    weights = tmp_path / "model.pt"
    weights.write_bytes(_decoy(marker))
    assert pickletools_names(weights) == ["os.system"]
    with pytest.raises(UntrustedFileError) as info:
        load_model(_card(tmp_path, "model.pt"), device="cpu")
    message = str(info.value)
    assert "a pickled Python object" in message and "os.system" in message, message
    assert ADD_ARCHITECTURE not in message
    assert not marker.exists()


def pickletools_names(path) -> list[str]:
    return [n for n in pickled_names(path) if n != "?"]


def test_inst_and_extension_codes_are_imports(tmp_path):
    inst = tmp_path / "inst.pt"
    inst.write_bytes(b"(S'echo'\nios\nsystem\n.")                # protocol 0: INST imports os.system
    ext = tmp_path / "ext.pt"
    ext.write_bytes(b"\x80\x02\x82\x07)R.")                     # EXT1 7: whatever copyreg maps code 7 to
    assert pickled_names(inst) == ["os.system"]
    assert pickled_objects(inst) == ("a pickled Python object", ["os.system"])
    assert pickled_objects(ext) == ("a pickled Python object", ["?"])
    state = tmp_path / "state.pt"
    state.write_bytes(pickle.dumps({"a": 1}, protocol=0))        # plain data: nothing imported
    assert pickled_objects(state) is None


@pytest.mark.parametrize("name", ["torch.storage._load_from_bytes", "torch._utils._rebuild_from_type", "os.system",
                                  "torch.nn.modules.conv.Conv3d", "builtins.eval", "torch.load", "?"])
def test_what_runs_code_is_not_data(name):
    from NeuroRelevanceLib.models.pickle_names import is_data_name

    assert not is_data_name(name) and not reviewed_data_name(name)
