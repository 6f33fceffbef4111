"""What produced a result: one settings record per run, built here and nowhere else.

:func:`build_record` turns a computed :class:`jobs.Job` into a plain JSON-able dict: model card
name, file and weights hashes, intended use and limits, method, preset and every rule parameter
that actually ran (a custom α with an αβ preset is recorded as the AlphaBeta(α, β) it ran), the
rules per layer as the engine applied them, target, filter and its range, atlas, the scan and
model grids, software version. The same record goes to node attributes (:data:`RECORD_ATTRIBUTE`),
the NIfTI header description and sidecar JSON of exported heatmaps, the header of region tables,
captions of rendered images and the result summary. :func:`differences` answers "does this run
match these settings?" so a panel can mark a shown result as out of date.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .engine import presets as _presets

#: node attribute holding the record as JSON
RECORD_ATTRIBUTE = "NeuroRelevance.record"
#: ``PRESET_ALPHA`` (α of the αβ presets, β = α − 1) and ``PRESET_PARAMETERS`` (the rule parameters each preset
#: records, besides ZBox bounds, which the rules entry shows) are read from the engine's preset registry on
#: every access (``__getattr__``): a preset registered later is recorded like the built-in ones.
_LIVE = {"PRESET_ALPHA": _presets.preset_alpha, "PRESET_PARAMETERS": _presets.preset_parameters}


def __getattr__(name: str) -> Any:
    if name in _LIVE:
        return _LIVE[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SYMBOLS = {"alpha": "α", "beta": "β", "epsilon": "ε", "gamma": "γ"}
#: one display convention everywhere (Slicer's), stated on every image we render
CONVENTION = "radiological view: patient right on image left (as in 3D Slicer)"
_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | Path | None) -> str:
    """SHA-256 of a file ("" when there is none); cached by path, size and modification time."""
    if path is None or not Path(path).is_file():
        return ""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def effective_alpha(preset: str | None, alpha: float | None) -> float | None:
    """The α an αβ run uses: the user's α when given, else the preset's own (None for other presets)."""
    alphas = _presets.preset_alpha()
    if preset not in alphas:
        return None
    return alphas[preset] if alpha is None else float(alpha)


def method_label(method: str, preset: str | None, alpha: float | None = None) -> str:
    """How a method appears in node names: "LRP epsilon-plus", "LRP αβ (α=3, β=2)", "gradcam++"."""
    if method != "lrp":
        return method
    value = effective_alpha(preset, alpha)
    if value is not None and preset is not None and value != _presets.preset_alpha()[preset]:
        return f"LRP αβ (α={value:g}, β={value - 1:g})"
    return f"LRP {preset}"


def rule_parameters(settings) -> dict:
    """The rule parameters an LRP run used, by name (α, β, ε, γ as they ran)."""
    from .engine.api import explain

    if settings.method != "lrp":
        return {}
    params = settings.engine_params
    if "rules" in params:
        return {"rules": "custom per-layer rules (see 'rules')"}
    alpha = effective_alpha(settings.preset, settings.alpha)
    defaults = {k: v.default for k, v in inspect.signature(explain).parameters.items()}
    values = {"alpha": alpha, "beta": None if alpha is None else alpha - 1.0,
              "epsilon": float(params.get("epsilon", defaults["epsilon"])),
              "gamma": float(params.get("gamma", defaults["gamma"]))}
    used = _presets.preset_parameters().get(settings.preset, ())
    return {name: values[name] for name in used}


def _grid(grid) -> dict:
    return {"shape_kji": [int(n) for n in grid.shape_kji],
            "spacing_mm": [round(float(s), 6) for s in grid.spacing],
            "ijk_to_ras": [[round(float(v), 6) for v in row] for row in grid.ijk_to_ras]}


def _rules(explanation) -> dict:
    """Layer -> rule, as the engine applied it (e.g. "Conv3d: AlphaBeta(alpha=3.0, beta=2.0, ...)")."""
    return {str(layer): str(rule) for layer, rule in (getattr(explanation, "rules", None) or {}).items()
            if layer != "filter"}


def _atlas_name(atlas: Any) -> str | None:
    if atlas is None:
        return None
    if hasattr(atlas, "GetName"):
        return atlas.GetName()
    return str(getattr(atlas, "name", atlas))


def regions_entry(atlas: Any, min_overlap: float, min_region_voxels: float, min_region_mm3: float) -> dict:
    """The record's region-statistics entry: atlas, overlap and size limits, on the scan grid."""
    return {"atlas": _atlas_name(atlas), "min_overlap": float(min_overlap),
            "min_region_voxels": float(min_region_voxels), "min_region_mm3": float(min_region_mm3),
            "grid": "scan"}


def build_record(job) -> dict:
    """The settings record of a computed job (call after ``jobs.compute``)."""
    from . import __version__

    s, card = job.settings, job.loaded.card
    e = job.explanation
    plain = {k: v for k, v in s.engine_params.items() if isinstance(v, (int, float, str, bool))}
    return {
        "software": f"NeuroRelevance {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": card.name, "card": str(card.path or ""), "card_sha256": file_sha256(card.path),
                  "weights": card.weights, "weights_sha256": file_sha256(card.weights_path),
                  "intended_use": card.intended_use, "limitations": card.limitations,
                  "use_warning": card.use_warning},
        "inputs": [{"channel": channel, "volume": name}
                   for channel, name in zip(card.input.channels, job.volume_names, strict=True)],
        "method": s.method, "label": s.label,
        "preset": s.preset if s.runs_lrp() else None,
        "rule_parameters": rule_parameters(s),
        "rules": _rules(e) if s.method == "lrp" else {},
        "method_parameters": {} if s.method == "lrp" else plain,
        "target": {"requested": "predicted" if s.target is None else str(s.target),
                   "index": None if job.class_index is None else _plain_index(job.class_index),
                   "label": job.label},
        "prediction": job.prediction,
        "filter": {"type": s.filter, "range": [float(v) for v in s.filter_range],
                   "placement": s.filter_placement},
        "regions": regions_entry(s.atlas, s.min_overlap, s.min_region_voxels, s.min_region_mm3)
        if s.atlas is not None else None,
        "grid": {"scan": _grid(job.channels[0][1]), "model": _grid(job.prepared.grid)},
        "conservation_error": float(e.max_conservation_error),
        "run_key": job.key,
    }


def _plain_index(index: Any) -> Any:
    try:
        return int(index)
    except (TypeError, ValueError):
        return str(index)


def differences(record: Mapping, settings: Mapping, model: Any = None) -> list[str]:
    """Why ``record`` does not match the run ``settings`` would make (empty: it matches).

    ``settings`` are the keyword arguments of ``RelevanceLogic.run`` (e.g. from
    ``panel.run_settings``). Display-only settings (opacity, threshold, positive-only and a filter
    at the input, which redraw from the cached map) never make a result stale. ``model``: the
    model card path now selected, if any.
    """
    reasons = []

    def differ(what: str, ran: Any, now: Any) -> None:
        if ran != now:
            reasons.append(f"{what}: run {_text(ran)}, now {_text(now)}")

    method = settings.get("method", "lrp")
    differ("method", record["method"], method)
    if method == "lrp" and record["method"] == "lrp":
        preset = settings.get("preset") or record["preset"]
        differ("preset", record["preset"], preset)
        ran = record.get("rule_parameters", {})
        if "alpha" in ran:
            differ("α", ran["alpha"], effective_alpha(preset, settings.get("alpha")))
        for name in ("epsilon", "gamma"):
            if name in ran and name in settings:
                differ(SYMBOLS[name], ran[name], float(settings[name]))
    target = settings.get("target")
    differ("target", record["target"]["requested"], "predicted" if target is None else str(target))
    ran_filter = record["filter"]
    placement = settings.get("filter_placement", "input")
    if "every-layer" in (placement, ran_filter["placement"]):
        now = {"type": settings.get("filter"), "range": [float(v) for v in settings.get("filter_range", (0, 1))],
               "placement": placement}
        differ("filter", filter_text(ran_filter), filter_text(now))
    regions = record.get("regions") or {}
    differ("atlas", regions.get("atlas"), _atlas_name(settings.get("atlas")))
    card = record["model"].get("card")
    if model is not None and card and Path(str(model)).resolve() != Path(card):
        reasons.append(f"model: run {Path(card).name}, now {Path(str(model)).name}")
    return reasons


def _text(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def filter_text(f: Mapping) -> str:
    """A filter of a record as text, e.g. "pass 0.30–1.00 (input)" or "none"."""
    if not f.get("type"):
        return "none"
    low, high = f["range"]
    return f"{f['type']} {low:.2f}–{high:.2f} ({f['placement']})"


def parameter_text(record: Mapping) -> str:
    """The rule parameters as they ran, e.g. "α=3, β=2" or "ε=1e-06" ("" for none)."""
    params = record.get("rule_parameters") or record.get("method_parameters") or {}
    return ", ".join(f"{SYMBOLS.get(k, k)}={v:g}" if isinstance(v, float) else f"{SYMBOLS.get(k, k)}={v}"
                     for k, v in params.items())


def summary(record: Mapping) -> str:
    """One line: method and rule parameters, target, filter, atlas, model."""
    params = parameter_text(record)
    regions = record.get("regions") or {}
    text = (f"{record['label']}{f' ({params})' if params and params not in record['label'] else ''}; "
            f"target {record['target']['label']}; filter: {filter_text(record['filter'])}; "
            f"model {record['model']['name']}")
    if regions.get("atlas"):
        text += f"; atlas {regions['atlas']} on the scan grid"
    return text


def caption_lines(record: Mapping, values: str = "") -> list[str]:
    """Caption of an image or report: what ran, on what, and what the model is for."""
    model = record["model"]
    scan = record["grid"]["scan"]
    sha = model.get("weights_sha256", "")
    lines = [f"Model {model['name']}" + (f" (weights sha256 {sha[:12]}…)" if sha else "")
             + f" · {summary(record).split('; model ')[0]}" + (f" · {values}" if values else ""),
             (f"Prediction: {record['prediction']} · " if record.get("prediction") else "")  # none for a cohort
             + f"scan grid {'×'.join(map(str, scan['shape_kji'][::-1]))} at "
             f"{'×'.join(f'{s:g}' for s in scan['spacing_mm'])} mm · {record['software']}"]
    return lines + use_lines(model.get("use_warning", ""), model.get("intended_use", ""),
                             model.get("limitations", ""))


def use_lines(warning: str, intended_use: str, limitations: str) -> list[str]:
    """A model's intended use and limits as caption lines, or its warning when the card states none."""
    if warning:
        return [f"⚠ {warning}"]
    return [f"Intended use: {intended_use}", f"Limits: {limitations}"]


def card_caption(card) -> list[str]:
    """Caption lines about a model card alone: name, weights hash, intended use and limits (or ⚠)."""
    sha = file_sha256(card.weights_path)
    return [f"Model {card.name}" + (f" (weights sha256 {sha[:12]}…)" if sha else "")] + use_lines(
        card.use_warning, card.intended_use, card.limitations)


def nifti_description(record: Mapping, values: str = "raw") -> str:
    """At most 79 ASCII characters for a NIfTI header's ``descrip`` (the sidecar JSON has the rest)."""
    params = parameter_text(record).replace("α", "a").replace("β", "b").replace("ε", "eps").replace("γ", "g")
    label = record["label"].split(" (")[0].replace("αβ", "alpha-beta")
    text = (f"NeuroRelevance {values} {label} {params} target {record['target']['label']} "
            f"model {record['model']['name']}")
    return text.encode("ascii", "replace").decode()[:79]


def to_json(record: Mapping) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def write_attributes(node, record: Mapping) -> None:
    """Store the record on an MRML node (attribute :data:`RECORD_ATTRIBUTE`, JSON)."""
    node.SetAttribute(RECORD_ATTRIBUTE, to_json(record))


def read_attributes(node) -> dict | None:
    """The record stored on a node by :func:`write_attributes` (None if it has none)."""
    text = node.GetAttribute(RECORD_ATTRIBUTE) if node is not None else None
    return json.loads(text) if text else None
