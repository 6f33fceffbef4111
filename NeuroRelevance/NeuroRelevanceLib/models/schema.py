"""The model-card schema, checked in one place; every problem names its field.

:func:`check_card` validates a card's JSON object (types, ranges, unknown keys with a
did-you-mean) and returns the problems found; :func:`check_network_output` checks the card
against the network it describes (output type and size). Architecture sizes are checked
against the weights file when the card is loaded (:mod:`.weights`). No torch is needed here.
"""
from __future__ import annotations

import difflib
import json
import math
from typing import Any

from ..engine import presets as _presets

OUTPUT_TYPES = ("classification", "regression", "segmentation")
#: choices of the card field ``input.normalization.type`` (what the model expects of its input); not the map
#: normalisation of ``method="summary"`` (``methods.SUMMARY_NORMALISATIONS``)
INPUT_NORMALIZATIONS = ("none", "zscore", "minmax", "percentile", "scale")
MASKS = ("nonzero", "none")
#: the largest input grid a card may ask for (voxels per channel): 512³
MAX_VOXELS = 512 ** 3

KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": ("name", "description", "architecture", "weights", "input", "output", "metrics",
         "recommended_preset", "recommendation_reason", "evidence", "intended_use", "limitations",
         "training", "ground_truth"),
    "architecture": ("class", "kwargs"),
    "input": ("channels", "shape", "spacing", "orientation", "origin", "normalization"),
    "input.normalization": ("type", "mask", "low", "high", "floor", "invert"),
    "output": ("type", "classes", "units", "range"),
}
_AXES = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def unknown_keys(obj: dict, where: str) -> list[str]:
    """One problem per key not in ``KNOWN_KEYS[where]``, with the known keys and a did-you-mean."""
    known = KNOWN_KEYS[where]
    problems = []
    for key in obj:
        if key in known:
            continue
        field = json.dumps(f"{where}.{key}" if where else str(key), ensure_ascii=False)[:80]
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f'{field} is not a card field{hint}; known fields'
                        f'{" of " + repr(where) if where else ""}: {", ".join(known)}')
    return problems


def _names(value: Any, field: str, allow_empty: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return [f'"{field}" must be a list of non-empty names (e.g. ["control", "AD"]), '
                f"not {type(value).__name__} {str(value)[:40]!r}"]
    if not value and not allow_empty:
        return [f'"{field}" must name at least one entry']
    duplicates = sorted({v for v in value if value.count(v) > 1})
    return [f'"{field}" names {duplicates} more than once'] if duplicates else []


def _vector(value: Any, field: str, positive: bool, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) != 3 or not all(_number(v) for v in value):
        return [f'"{field}" must be three numbers ({what}), not {str(value)[:40]!r}']
    if not all(math.isfinite(v) for v in value):
        return [f'"{field}" must be finite, not {value}']
    if positive and not all(v > 0 for v in value):
        return [f'"{field}" must be positive (mm), not {value}']
    return []


def _input_problems(inp: dict) -> list[str]:
    problems = unknown_keys(inp, "input")
    problems += _names(inp.get("channels", ["image"]), "input.channels", allow_empty=False)
    shape = inp.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) != 3 or not all(_positive_int(n) for n in shape):
            problems.append(f'"input.shape" must be three positive integers (D, H, W), not {str(shape)[:40]!r}')
        elif math.prod(shape) > MAX_VOXELS:
            problems.append(f'"input.shape" {shape} has {math.prod(shape):,} voxels; the limit is 512³')
    if inp.get("spacing") is not None:
        problems += _vector(inp["spacing"], "input.spacing", True, "mm per i, j, k axis")
    if inp.get("origin") is not None:
        problems += _vector(inp["origin"], "input.origin", False, "the RAS position of voxel 0 in mm")
    code = inp.get("orientation", "RAS")
    if not isinstance(code, str) or len(code) != 3 or any(c not in _AXES for c in code.upper()) \
            or len({_AXES[c] for c in code.upper()}) != 3:
        problems.append(f'"input.orientation" must be an axis code such as "RAS" or "LPS" (one letter '
                        f"of each pair R/L, A/P, S/I), not {str(code)[:20]!r}")
    problems += _normalization_problems(inp.get("normalization", {"type": "none"}))
    return problems


def _normalization_problems(norm: Any) -> list[str]:
    if not isinstance(norm, dict):
        return [f'"input.normalization" must be an object such as {{"type": "zscore"}}, not {str(norm)[:40]!r}']
    problems = unknown_keys(norm, "input.normalization")
    kind = norm.get("type", "none")
    if kind not in INPUT_NORMALIZATIONS:
        problems.append(f'"input.normalization.type" must be one of {INPUT_NORMALIZATIONS}, not {str(kind)[:30]!r}')
    if norm.get("mask", "none") not in MASKS:
        problems.append(f'"input.normalization.mask" must be one of {MASKS}, not {str(norm.get("mask"))[:30]!r}')
    bounds = {k: norm[k] for k in ("low", "high") if k in norm and not (k == "high" and kind == "scale")}
    if bounds and kind != "percentile":
        problems.append(f'"input.normalization.{next(iter(bounds))}" only applies to type "percentile"')
    elif kind == "percentile":
        low, high = norm.get("low", 1.0), norm.get("high", 99.0)
        if not (_number(low) and _number(high) and 0 <= low < high <= 100):
            problems.append('"input.normalization.low"/"high" must be percentiles with '
                            f"0 <= low < high <= 100, not low={low!r}, high={high!r}")
    elif kind == "scale" and not (_number(high := norm.get("high", 99.0)) and 0 < high <= 100):
        problems.append(f'"input.normalization.high" must be a percentile with 0 < high <= 100, not {high!r}')
    if "floor" in norm and kind != "scale":
        problems.append('"input.normalization.floor" only applies to type "scale"')
    elif kind == "scale" and not (_number(floor := norm.get("floor", 0.0)) and 0 <= floor < 1):
        problems.append(f'"input.normalization.floor" must be a fraction with 0 <= floor < 1, not {floor!r}')
    if "invert" in norm and kind != "scale":
        problems.append('"input.normalization.invert" only applies to type "scale"')
    elif not isinstance(norm.get("invert", False), bool):
        problems.append(f'"input.normalization.invert" must be true or false, not {str(norm["invert"])[:20]!r}')
    return problems


def _output_problems(out: dict) -> list[str]:
    problems = unknown_keys(out, "output")
    kind = out.get("type", "classification")
    if kind not in OUTPUT_TYPES:
        problems.append(f'"output.type" must be one of {OUTPUT_TYPES}, not {str(kind)[:30]!r}')
    classes = out.get("classes", [])
    problems += _names(classes, "output.classes", allow_empty=True)
    if kind == "regression" and isinstance(classes, list) and len(classes) > 1:
        problems.append(f'"output.classes" names {len(classes)} outputs, but a regression card '
                        "has one output (use output.type 'classification' for classes)")
    if not isinstance(out.get("units", ""), str):
        problems.append('"output.units" must be text (e.g. "years")')
    span = out.get("range")
    if span is not None and not (isinstance(span, list) and len(span) == 2 and all(map(_number, span))
                                 and span[0] < span[1]):
        problems.append(f'"output.range" must be the training range [low, high] of a regression output, low < high, '
                        f"not {str(span)[:40]}")
    return problems


def _non_finite(obj: Any, field: str) -> list[str]:
    if isinstance(obj, float) and not math.isfinite(obj):
        return [f'{json.dumps(field, ensure_ascii=False)[:80]} is {obj}, which is not a JSON number']
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _non_finite(v, f"{field}.{k}" if field else str(k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _non_finite(v, f"{field}[{i}]")]
    return []


def _object(raw: dict, key: str, problems: list[str]) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f'"{key}" must be a JSON object, not {type(value).__name__}')
        return {}
    return value


def check_card(raw: dict) -> list[str]:
    """Every problem of a card's JSON object, each naming its field (empty list: valid)."""
    problems = unknown_keys(raw, "") + _non_finite(raw, "")
    for key in ("name", "description", "intended_use", "limitations", "recommendation_reason"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f'"{key}" must be text')
    weights = raw.get("weights")
    if not isinstance(weights, str) or not weights.strip() or "\x00" in weights:
        problems.append('"weights" must name the weights file (.safetensors, a state-dict .pt, '
                        "or a TorchScript/.pt2 file)")
    arch = raw.get("architecture")
    if arch is None:
        if isinstance(weights, str) and weights.lower().endswith(".safetensors"):
            problems.append('"architecture" is needed: a .safetensors file holds only weights')
    elif not isinstance(arch, dict) or not isinstance(arch.get("class"), str) or not arch["class"]:
        problems.append('"architecture" must be {"class": "<importable class>", "kwargs": {...}}')
    else:
        problems += unknown_keys(arch, "architecture")
        if not isinstance(arch.get("kwargs", {}), dict):
            problems.append('"architecture.kwargs" must be a JSON object')
    if raw.get("recommended_preset", "epsilon-plus") not in _presets.PRESETS:
        problems.append(f'"recommended_preset" must be one of {_presets.PRESETS}')
    problems += _input_problems(_object(raw, "input", problems))
    problems += _output_problems(_object(raw, "output", problems))
    for key in ("metrics", "training", "ground_truth", "evidence"):
        _object(raw, key, problems)
    return list(dict.fromkeys(problems))


def check_network_output(card: Any, shape: tuple[int, ...] | None) -> None:
    """Raise one InputError if the network's output (``shape`` for one input) contradicts the card."""
    from ..errors import InputError

    if shape is None:
        return
    where = card.path.name if getattr(card, "path", None) is not None else "The model card"
    kind, classes = card.output.type, list(card.output.classes)
    per = "channels per voxel" if kind == "segmentation" else "values per scan"
    dims = 5 if kind == "segmentation" else 2
    if len(shape) != dims:
        form = "(batch, classes, D, H, W)" if dims == 5 else "(batch, outputs)"
        raise InputError(f"{where}: output.type is '{kind}', which needs a network returning "
                         f"{form}, but this network returns shape {list(shape)}.")
    size = int(shape[1])
    if kind == "regression" and size != 1:
        raise InputError(f"{where}: output.type is 'regression' but the network returns {size} "
                         f"{per}; a regression card needs one output (for classes use "
                         "output.type 'classification' with one name per output).")
    if classes and len(classes) != size:
        raise InputError(f"{where}: output.classes names {len(classes)} ({', '.join(classes)}) but "
                         f"the network returns {size} {per}; give one name per output.")


def __getattr__(name: str) -> Any:
    """``PRESETS``: the engine's registered presets, read on every access (its registry imports no torch, so
    reading a card still needs none; a preset registered later is accepted too)."""
    if name == "PRESETS":
        return _presets.PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
