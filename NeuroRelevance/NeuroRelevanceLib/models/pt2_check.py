"""Inspect a ``torch.export`` archive (``.pt2``) for everything ``torch.export.load`` would unpickle,
execute or load as native code, before torch sees it.

What torch 2.13 does with the members of ``<root>/`` (``torch/export/pt2_archive/_package.py``,
``torch/_export/serde/serialize.py``), and what is refused here unless the file is trusted:

==========================================  ===============================================  =========
member                                      what torch does                                  untrusted
==========================================  ===============================================  =========
``data/weights/<m>_weights_config.json``    entries with ``use_pickle`` → ``torch.load(...,  refused
                                            weights_only=False)``; others → raw tensor bytes
``data/constants/<m>_constants_config.json`` ``tensor_*`` with ``use_pickle`` → unpickled;     refused
                                            ``custom_obj_*`` → TorchScript unpickler;
                                            ``opaque_obj_*`` → ``pickle.loads``
``data/weights/<m>.pt``,                    torch <= 2.7 layout: ``torch.load`` with a       refused
``data/constants/<m>.pt``                   fallback to ``weights_only=False``
``data/sample_inputs/<m>.pt``               ``torch.load`` with a fallback to                accepted only if it
                                            ``weights_only=False``                           loads ``weights_only``
``models/<m>.json``                         the program: see :mod:`.export_graph`            checked
``data/aotinductor/...``                    compiled shared libraries, loaded into the       refused
                                            process
``extra/...``                               read as text                                     accepted
anything else                               (not read by torch 2.13)                         refused
==========================================  ===============================================  =========

A payload entry must also fit its record (sizes × strides inside the stored bytes), so a tiny
file cannot make torch allocate gigabytes of zeros.
"""
from __future__ import annotations

import io
import json
import re
from typing import Any

from .archive import Archive
from .export_graph import program_problems

_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PAYLOAD = re.compile(r"^[A-Za-z0-9_]+$")
_MODEL = re.compile(r"^models/([A-Za-z0-9_.-]+)\.json$")


def pt2_problems(archive: Archive) -> list[str]:
    """Every reason not to hand this archive to ``torch.export.load`` without trust (empty: safe)."""
    names = set(archive.names)
    models = sorted(m.group(1) for n in names if (m := _MODEL.match(n)))
    problems: list[str] = []
    fmt = archive.text("archive_format").strip() if "archive_format" in names else ""
    if fmt != "pt2":
        problems.append("the archive has no archive_format 'pt2' record")
    if "model" not in models:
        problems.append("the archive holds no models/model.json program")
    allowed = set(_FIXED)
    for model in models:
        program = f"models/{model}.json"
        allowed.add(program)
        problems += program_problems(archive.text(program), program)
        for kind, folder, prefix in (("weights", "data/weights/", "weight_"),
                                     ("constants", "data/constants/", "tensor_")):
            config = f"{folder}{model}_{kind}_config.json"
            if config in names:
                allowed.add(config)
                problems += _config_problems(archive, config, folder, prefix, allowed)
        sample = f"data/sample_inputs/{model}.pt"
        if sample in names:
            allowed.add(sample)
            problems += _sample_problems(archive.read(sample), sample)
    for name in sorted(names - allowed):
        if name.startswith("extra/"):
            continue
        problems.append(f"{name}: {_what(name)}")
    return list(dict.fromkeys(problems))


def _what(name: str) -> str:
    if name.startswith("data/aotinductor/"):
        return "AOTInductor compiled code, which torch loads into the process as native code"
    if name.endswith(".pt") and name.startswith(("data/weights/", "data/constants/")):
        return "pickled weights in the torch <= 2.7 layout, which torch may unpickle with code"
    if name.startswith(("data/weights/", "data/constants/")):
        return "a payload no configuration describes (or one refused above)"
    return "not part of an exported program"


def _config_problems(archive: Archive, config: str, folder: str, prefix: str,
                     allowed: set[str]) -> list[str]:
    try:
        entries = json.loads(archive.text(config)).get("config")
    except (json.JSONDecodeError, AttributeError) as exc:
        return [f"{config} is not a payload configuration ({exc})"]
    if not isinstance(entries, dict):
        return [f"{config} is not a payload configuration"]
    problems = []
    for fqn, entry in entries.items():
        where = f"{config} entry {str(fqn)[:60]!r}"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not an object")
            continue
        path_name = entry.get("path_name")
        if entry.get("use_pickle") is not False:
            problems.append(f"{where} is a pickled payload (use_pickle), which torch.export.load "
                            "unpickles with weights_only=False")
            continue
        if not isinstance(path_name, str) or not _PAYLOAD.match(path_name) \
                or not path_name.startswith(prefix):
            problems.append(f"{where} names the payload {str(path_name)[:60]!r}, not a plain "
                            f"'{prefix}<n>' tensor (custom and opaque objects are unpickled)")
            continue
        record = folder + path_name
        if record not in archive.names:
            problems.append(f"{where}: its payload {record} is missing")
            continue
        allowed.add(record)
        problem = _fit_problem(entry.get("tensor_meta"), archive._reader.get_record_size(record))
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _ints(values: Any) -> list[int] | None:
    if not isinstance(values, list):
        return None
    out = []
    for v in values:
        if not (isinstance(v, dict) and set(v) == {"as_int"} and isinstance(v["as_int"], int)
                and not isinstance(v["as_int"], bool) and v["as_int"] >= 0):
            return None
        out.append(v["as_int"])
    return out


def _fit_problem(meta: Any, nbytes: int) -> str | None:
    """Why a tensor entry does not fit its stored bytes (None if it does)."""
    import torch
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    if not isinstance(meta, dict):
        return "it has no tensor description"
    sizes, strides = _ints(meta.get("sizes")), _ints(meta.get("strides"))
    offset = _ints([meta.get("storage_offset")])
    dtype = _SERIALIZE_TO_TORCH_DTYPE.get(meta.get("dtype")) if isinstance(meta.get("dtype"), int) else None
    if sizes is None or strides is None or offset is None or len(sizes) != len(strides) or dtype is None:
        return "its sizes, strides, offset or dtype are not plain numbers"
    item = torch.empty(0, dtype=dtype).element_size()
    if nbytes % item:
        return f"its payload of {nbytes} bytes is not a whole number of {dtype} elements"
    needed = 0 if 0 in sizes else offset[0] + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True)) + 1
    available = nbytes // item
    if needed > available:
        return (f"it declares a {sizes} tensor but stores {available} element(s); torch would "
                "allocate the difference")
    return None


def _sample_problems(data: bytes, member: str) -> list[str]:
    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any refusal means torch would retry with full pickle
        return [f"{member} holds more than tensors (weights_only refuses it), and torch.export.load "
                "would then unpickle it with weights_only=False"]
    return []
