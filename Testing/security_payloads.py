"""Crafted model files that run code when loaded carelessly, for the security tests.

Every payload, if torch runs it, creates its own marker file. ``spring()`` loads the file with
torch's own, unguarded API (``torch.export.load``, ``torch.jit.load``, ``torch.load(weights_only=
False)``) and so proves the trap is real: a test that asserts "the marker is absent" after one
of our entry points refused the file can fail. Payloads torch itself blocks (its verifier or its
TorchScript unpickler) have ``spring=None``: they are refused by our inspection anyway.
"""
from __future__ import annotations

import contextlib
import io
import json
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn as nn

SHAPE = (8, 8, 8)


class Exec:
    """Unpickling this runs ``code`` (via ``exec``)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


@dataclass
class Payload:
    name: str
    path: Path
    marker: Path
    spring: Callable[[], None] | None = None     # torch's unguarded load (+ call) of the file
    trusted_runs: bool = False                   # load_model(trusted=True) reaches the payload

    def fired(self) -> bool:
        return self.marker.exists()

    def reset(self) -> None:
        if self.marker.exists():
            self.marker.unlink()

    def spring_it(self) -> None:
        """Load (and call) the file with torch's own API, ignoring what breaks after the payload ran."""
        with contextlib.suppress(Exception):  # the payload usually breaks the load after it ran
            self.spring()


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Linear(2, 2)).eval()


def example() -> torch.Tensor:
    return torch.zeros((1, 1, *SHAPE))


def exported_bytes(model: nn.Module | None = None) -> bytes:
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(model or tiny_net(), (example(),)), buffer)
    return buffer.getvalue()


def rewrite_zip(data: bytes, edit: Callable[[dict, str], None]) -> bytes:
    """A copy of a zip archive after ``edit(members, root)`` changed its members (name → bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
        root = archive.namelist()[0].split("/")[0]
    edit(members, root)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def _tsave(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _hex(marker: Path) -> str:
    """An expression that creates ``marker`` and contains no quote other than ``'``."""
    return f"exec(bytes.fromhex('{_code(marker).encode().hex()}').decode())"


def _program(members: dict, root: str) -> dict:
    return json.loads(members[f"{root}/models/model.json"])


def _set_program(members: dict, root: str, program: dict) -> None:
    members[f"{root}/models/model.json"] = json.dumps(program).encode()


# ---- .pt2 edits: each takes (members, root, marker) ---------------------------------------------
def _weight_pickle(m, r, marker):
    config = json.loads(m[f"{r}/data/weights/model_weights_config.json"])
    entry = config["config"]["0.weight"]
    entry["use_pickle"] = True
    m[f"{r}/data/weights/model_weights_config.json"] = json.dumps(config).encode()
    m[f"{r}/data/weights/{entry['path_name']}"] = _tsave(Exec(_code(marker)))


def _constant(prefix: str, raw_pickle: bool):
    def edit(m, r, marker):
        config = {"config": {"c": {"path_name": f"{prefix}0", "is_param": False, "use_pickle": True,
                                   "tensor_meta": None}}}
        m[f"{r}/data/constants/model_constants_config.json"] = json.dumps(config).encode()
        payload = Exec(_code(marker))
        m[f"{r}/data/constants/{prefix}0"] = pickle.dumps(payload) if raw_pickle else _tsave(payload)
    return edit


def _sample_inputs(m, r, marker):
    m[f"{r}/data/sample_inputs/model.pt"] = _tsave(Exec(_code(marker)))


def _legacy(folder: str):
    def edit(m, r, marker):
        m[f"{r}/data/{folder}/model.pt"] = _tsave(Exec(_code(marker)))
    return edit


def _sympy_size(m, r, marker):
    program = _program(m, r)
    values = program["graph_module"]["graph"]["tensor_values"]
    expression = f'exec("{_code(marker)}")'  # sympify evaluates builtins such as exec
    values[next(iter(values))]["sizes"][0] = {"as_expr": {"expr_str": expression, "hint": {"as_int": 2}}}
    _set_program(m, r, program)


def _guards(m, r, marker):
    program = _program(m, r)
    program["guards_code"] = [f"{_hex(marker)} is None"]
    _set_program(m, r, program)


def _node_name(m, r, marker):
    text = m[f"{r}/models/model.json"].decode().replace('"relu"', json.dumps(f"self.__dict__[{_hex(marker)}]"))
    m[f"{r}/models/model.json"] = text.encode()


def _stack_trace(m, r, marker):
    program = _program(m, r)
    for node in program["graph_module"]["graph"]["nodes"]:
        node["metadata"]["stack_trace"] = f'File "a.py", line 1, in forward\n    x = 1\r{_hex(marker)}'
    _set_program(m, r, program)


def _call_target(target: str):
    def edit(m, r, marker):
        program = _program(m, r)
        program["verifiers"] = []
        for node in program["graph_module"]["graph"]["nodes"]:
            if node["target"] == "torch.ops.aten.relu.default":
                node["target"] = target
                node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]
        _set_program(m, r, program)
    return edit


def _aotinductor(m, r, marker):
    m[f"{r}/data/aotinductor/model/model.so"] = b"\x7fELF not really a library"
    m[f"{r}/data/aotinductor/model/model.wrapper.so"] = b"\x7fELF"


def _old_layout(m, r, marker):
    program = m[f"{r}/models/model.json"]
    m.clear()
    m["version"] = b"8.20"
    m["serialized_exported_program.json"] = program
    m["serialized_state_dict.pt"] = _tsave({})
    m["serialized_constants.pt"] = _tsave(Exec(_code(marker)))
    m["serialized_example_inputs.pt"] = _tsave(((example(),), {}))


def _huge_zeros(m, r, marker):
    config = json.loads(m[f"{r}/data/weights/model_weights_config.json"])
    entry = config["config"]["0.weight"]
    entry["tensor_meta"]["sizes"] = [{"as_int": 4096}] * 4
    m[f"{r}/data/weights/model_weights_config.json"] = json.dumps(config).encode()
    m[f"{r}/data/weights/{entry['path_name']}"] = b""


#: name → (edit, when torch runs it: "load", "call" or None if torch itself blocks it)
PT2_EDITS = {
    "pt2_weight_pickle": (_weight_pickle, "load"),
    "pt2_constant_pickle": (_constant("tensor_", False), "load"),
    "pt2_opaque_constant": (_constant("opaque_obj_", True), "load"),
    "pt2_custom_object": (_constant("custom_obj_", True), None),
    "pt2_sample_inputs": (_sample_inputs, "load"),
    "pt2_legacy_weights": (_legacy("weights"), "load"),
    "pt2_legacy_constants": (_legacy("constants"), "load"),
    "pt2_sympy_size": (_sympy_size, "load"),
    "pt2_guards_code": (_guards, "call"),
    "pt2_node_name": (_node_name, None),
    "pt2_stack_trace": (_stack_trace, None),
    "pt2_call_target": (_call_target("torch.serialization.os.system"), None),
    "pt2_file_op": (_call_target("torch.ops.aten.from_file.default"), None),
    "pt2_aotinductor": (_aotinductor, None),
    "pt2_old_layout": (_old_layout, "load"),
    "pt2_huge_zeros": (_huge_zeros, None),
}


# ---- TorchScript ------------------------------------------------------------------------------
class _SaveOnLoad(nn.Module):
    """TorchScript: ``__setstate__`` (run by torch.jit.load) writes a file with ``torch.save``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.scale = torch.ones(1)
        self.path = marker

    def forward(self, x):
        return x * self.scale

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str]:
        return self.scale, self.path

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str]) -> None:
        self.scale = state[0]
        self.path = state[1]
        self.training = False
        torch.save(self.path, self.path)


class _SaveOnCall(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.path = marker

    def forward(self, x):
        torch.save(self.path, self.path)
        return x.mean(dim=(2, 3, 4)).repeat(1, 2)


class _ReadOnCall(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.path = marker

    def forward(self, x):
        y = torch.from_file(self.path, size=1, dtype=torch.uint8)
        return x.mean(dim=(2, 3, 4)).repeat(1, 2) + y.float().sum()


def _script_bytes(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def _python_global_in_constants(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(tiny_net(), example()), buffer)

    def edit(members, root):
        members[f"{root}/constants.pkl"] = pickle.dumps(Exec(_code(marker)), protocol=2)
    return rewrite_zip(buffer.getvalue(), edit)


def _load_pt2(path: Path) -> object:
    return torch.export.load(str(path))


def _call_pt2(path: Path, x: torch.Tensor) -> object:
    return torch.export.load(str(path)).module()(x)


def build_payloads(folder: Path) -> dict[str, Payload]:
    """Write every crafted file into ``folder``; name → :class:`Payload`."""
    import warnings

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Payload] = {}
    base = exported_bytes()
    x = example()
    for name, (edit, when) in PT2_EDITS.items():
        marker = folder / f"{name}.fired"
        path = folder / f"{name}.pt2"
        path.write_bytes(rewrite_zip(base, lambda m, r, e=edit, k=marker: e(m, r, k)))
        spring = None
        if when == "load":
            spring = partial(_load_pt2, path)
        elif when == "call":
            spring = partial(_call_pt2, path, x)
        out[name] = Payload(name, path, marker, spring, trusted_runs=when == "load")
    # the same .pt2 payload under other names: the format comes from the content
    for name, filename in (("pt2_upper_case", "EVIL.PT2"), ("pt2_named_pt", "evil.pt"),
                           ("pt2_named_safetensors", "evil.safetensors")):
        marker = folder / f"{name}.fired"
        path = folder / filename
        path.write_bytes(rewrite_zip(base, lambda m, r, k=marker: _weight_pickle(m, r, k)))
        out[name] = Payload(name, path, marker, lambda p=path: torch.export.load(io.BytesIO(p.read_bytes())),
                            trusted_runs=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls, when in (("ts_save_on_load", _SaveOnLoad, "load"),
                                ("ts_save_on_call", _SaveOnCall, "call"),
                                ("ts_read_on_call", _ReadOnCall, None)):
            marker = folder / f"{name}.fired"
            path = folder / f"{name}.ts"
            path.write_bytes(_script_bytes(cls(str(marker))))
            spring = (lambda p=path: torch.jit.load(str(p))) if when == "load" else \
                (lambda p=path: torch.jit.load(str(p))(x)) if when == "call" else None
            out[name] = Payload(name, path, marker, spring, trusted_runs=when == "load")
        marker = folder / "ts_python_global.fired"
        path = folder / "ts_python_global.pt"
        path.write_bytes(_python_global_in_constants(marker))
        out["ts_python_global"] = Payload("ts_python_global", path, marker, None)
    for name, filename, data_of in (
            ("pickle_plain", "evil.pth", lambda k: pickle.dumps(Exec(_code(k)))),
            ("pickle_torch_zip", "evil_zip.pt", lambda k: _tsave({"model": Exec(_code(k))})),
            ("pickle_named_ts", "evil_pickle.TS", lambda k: _tsave(Exec(_code(k))))):
        marker = folder / f"{name}.fired"
        path = folder / filename
        path.write_bytes(data_of(marker))
        out[name] = Payload(name, path, marker, lambda p=path: torch.load(str(p), weights_only=False),
                            trusted_runs=True)
    for payload in out.values():
        payload.reset()
    return out


def card_for(payload: Payload, folder: Path, name: str = "card.json") -> Path:
    """A model card (no architecture) whose weights are the crafted file, placed beside it."""
    card = {"name": f"card of {payload.name}", "weights": payload.path.name,
            "input": {"channels": ["T1"], "shape": list(SHAPE), "spacing": [2.0, 2.0, 2.0],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "security tests", "limitations": "crafted file"}
    path = folder / name
    path.write_text(json.dumps(card))
    return path


@pytest.fixture(scope="module", name="payloads")
def payloads_fixture(tmp_path_factory) -> dict[str, Payload]:
    """Every crafted file, built once per test module (markers cleared before each use)."""
    built = build_payloads(tmp_path_factory.mktemp("payloads"))
    yield built
    for payload in built.values():
        payload.reset()


ALL = list(PT2_EDITS) + [
    "pt2_upper_case", "pt2_named_pt", "pt2_named_safetensors", "ts_save_on_load", "ts_save_on_call",
    "ts_read_on_call", "ts_python_global", "pickle_plain", "pickle_torch_zip", "pickle_named_ts"]
SPRUNG = [n for n in ALL if n not in ("pt2_custom_object", "pt2_node_name", "pt2_stack_trace",
                                      "pt2_call_target", "pt2_file_op", "pt2_aotinductor",
                                      "pt2_huge_zeros", "ts_read_on_call", "ts_python_global")]
#: the payloads load_model(trusted=True) hands to torch, so that they run
TRUSTED_RUNS = [n for n, (_, when) in PT2_EDITS.items() if when == "load"] + [
    "pt2_upper_case", "pt2_named_pt", "pt2_named_safetensors", "ts_save_on_load", "pickle_plain",
    "pickle_torch_zip", "pickle_named_ts"]
