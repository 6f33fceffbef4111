"""Model cards: the JSON file that says how to rebuild, feed and read a trained network.

A card sits beside its weights file and holds no code::

    {
      "name": "AD vs control, 3 mm",
      "architecture": {"class": "NeuroRelevanceLib.nets.DeepTaylorCNN", "kwargs": {"in_channels": 1}},
      "weights": "ad_cnn.safetensors",
      "input": {"channels": ["T1"], "shape": [64, 76, 64], "spacing": [3.0, 3.0, 3.0],
                "orientation": "RAS", "normalization": {"type": "zscore", "mask": "nonzero"}},
      "output": {"type": "classification", "classes": ["control", "AD"]},
      "metrics": {"accuracy": 0.91},
      "recommended_preset": "alpha1-beta0",
      "intended_use": "Research on AD-related atrophy patterns in T1 scans of adults.",
      "limitations": "Not for clinical use. Trained on one scanner; untested on children."
    }

``input.shape`` is the spatial shape in torch order (D, H, W), which is NeuroRelevance's KJI order;
``spacing`` is per (i, j, k) axis in mm, like a Slicer volume's spacing; ``orientation`` names where
i, j, k run (``"RAS"``: right, anterior, superior); the optional ``origin`` is the RAS position of
voxel 0 (a template-space model gives it; otherwise the grid is centred on the scan).
``intended_use`` and ``limitations`` are free text shown with every result (panel, captions,
reports); a card without them still loads, with a visible warning (:attr:`ModelCard.use_warning`).
``recommendation_reason`` says why ``recommended_preset`` is recommended, in technical words; the
optional ``evidence`` object holds the scores behind it (the demo cards record them with
``benchmarks/bench_groundtruth.py --write-evidence``; its form: :mod:`..pretrained.evidence`). The card
carries ``evidence`` read-only (:attr:`ModelCard.evidence`, ``None`` when the card has none), and the line
shown beside the preset is built from it (:mod:`..recommendation`).
Every field and its rules: :mod:`.schema`; where the weights may be and what they may hold:
:mod:`.weights` and docs/security.md.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import schema as _schema
from .schema import INPUT_NORMALIZATIONS, OUTPUT_TYPES, check_card

__all__ = ["INPUT_NORMALIZATIONS", "InputSpec", "ModelCard", "OUTPUT_TYPES", "OutputSpec", "PRESETS",  # noqa: F822 - module __getattr__
           "card_from_dict", "read_card"]


@dataclass(frozen=True)
class InputSpec:
    """What the network expects to be fed."""

    channels: tuple[str, ...] = ("image",)
    shape: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    orientation: str = "RAS"
    normalization: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    origin: tuple[float, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """How to read what the network returns."""

    type: str = "classification"
    classes: tuple[str, ...] = ()
    units: str = ""
    range: tuple[float, float] | None = None   # a regression's training range: predictions outside are flagged


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated model card (see the module docstring for the JSON form)."""

    name: str
    architecture: dict[str, Any] | None
    weights: str
    input: InputSpec
    output: OutputSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    recommended_preset: str = "epsilon-plus"
    description: str = ""
    path: Path | None = None
    intended_use: str = ""
    limitations: str = ""
    #: why the card recommends its preset, in technical words (the scores behind it: :attr:`evidence`)
    recommendation_reason: str = ""
    #: the scores behind the recommendation (``pretrained.evidence``), read-only; None when the card has none
    evidence: Mapping[str, Any] | None = None

    @property
    def use_warning(self) -> str:
        """A warning when the card does not state its intended use or limitations ("" otherwise)."""
        missing = [what for what, text in (("intended use", self.intended_use),
                                           ("limitations", self.limitations)) if not text.strip()]
        if not missing:
            return ""
        return (f"Model card '{self.name}' states no {' and no '.join(missing)}: nothing says what this "
                "model is for or where it fails; do not rely on its results for decisions about patients.")

    @property
    def weights_path(self) -> Path:
        """The weights file, resolved relative to the card's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / self.weights).resolve()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description,
            "architecture": self.architecture, "weights": self.weights,
            "input": {"channels": list(self.input.channels),
                      "shape": None if self.input.shape is None else list(self.input.shape),
                      "spacing": None if self.input.spacing is None else list(self.input.spacing),
                      "orientation": self.input.orientation,
                      "origin": None if self.input.origin is None else list(self.input.origin),
                      "normalization": self.input.normalization},
            "output": {"type": self.output.type, "classes": list(self.output.classes),
                       "units": self.output.units,
                       **({"range": list(self.output.range)} if self.output.range else {})},
            "metrics": self.metrics, "recommended_preset": self.recommended_preset,
            "intended_use": self.intended_use, "limitations": self.limitations,
            **({"recommendation_reason": self.recommendation_reason} if self.recommendation_reason else {}),
            **({"evidence": _thawed(self.evidence)} if self.evidence is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def read_card(path: str | Path) -> ModelCard:
    """Parse and validate a model card JSON file; every problem is reported in one message."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No such model card: {path}.")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path.name} is not valid JSON ({exc}); a model card is a JSON object.") from exc
    except OSError as exc:
        raise InputError(f"{path.name} cannot be read ({exc.strerror or exc}).") from exc
    return card_from_dict(raw, path)


def _pair(values: Any) -> tuple[float, float]:
    """``[low, high]`` (checked by :func:`check_card`) as floats."""
    low, high = (float(v) for v in values)
    return low, high


class _ReadOnly(Mapping):
    """A JSON object that cannot be changed (unlike a mapping proxy, it can be copied and pickled)."""

    def __init__(self, items: dict) -> None:
        self._items = items

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self):
        return _ReadOnly, (self._items,)


def _frozen(value: Any) -> Any:
    """A read-only copy of a JSON value: objects as :class:`_ReadOnly` mappings, arrays as tuples."""
    if isinstance(value, Mapping):
        return _ReadOnly({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    """The JSON value of :func:`_frozen`'s copy (dicts and lists again)."""
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thawed(v) for v in value]
    return value


def card_from_dict(raw: Any, path: Path | None = None) -> ModelCard:
    """Build a :class:`ModelCard` from its JSON object, checking every field (:mod:`.schema`)."""
    where = path.name if path else "model card"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a model card must be a JSON object.")
    problems = check_card(raw)
    if problems:
        raise InputError(f"{where} is not a valid model card: " + "; ".join(problems) + ".")
    arch = raw.get("architecture")
    inp, out = raw.get("input") or {}, raw.get("output") or {}
    shape, spacing, origin = inp.get("shape"), inp.get("spacing"), inp.get("origin")
    return ModelCard(
        name=str(raw.get("name") or (path.stem if path else "model")),
        description=str(raw.get("description", "")),
        architecture=None if arch is None else {"class": arch["class"],
                                                "kwargs": dict(arch.get("kwargs", {}))},
        weights=raw["weights"],
        input=InputSpec(tuple(inp.get("channels", ["image"])), None if shape is None else tuple(shape),
                        None if spacing is None else tuple(float(s) for s in spacing),
                        str(inp.get("orientation", "RAS")).upper(),
                        dict(inp.get("normalization", {"type": "none"})),
                        None if origin is None else tuple(float(v) for v in origin)),
        output=OutputSpec(out.get("type", "classification"), tuple(out.get("classes", ())),
                          str(out.get("units", "")),
                          None if out.get("range") is None else _pair(out["range"])),
        metrics=dict(raw.get("metrics") or {}),
        recommended_preset=str(raw.get("recommended_preset", "epsilon-plus")),
        path=path.resolve() if path else None,
        intended_use=str(raw.get("intended_use", "")), limitations=str(raw.get("limitations", "")),
        recommendation_reason=str(raw.get("recommendation_reason", "")),
        evidence=_frozen(raw["evidence"]) if raw.get("evidence") is not None else None,
    )


def __getattr__(name: str) -> Any:
    """``PRESETS``: the engine's registered presets, read on every access (``schema.PRESETS``)."""
    if name == "PRESETS":
        return _schema.PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
