"""One relevance run split into a thread-safe part and the scene part.

``Job`` holds copies of the input arrays (read from the scene on the main thread), the loaded
model and the settings. :func:`compute` does all the heavy work (resampling into the model grid,
LRP, resampling back, region statistics on the scan grid, the settings record) without touching
MRML, so a GUI can run it on a worker thread, report progress and cancel between stages;
``RelevanceLogic.apply`` then adds the nodes on the main thread.
"""
from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .regions.statistics import DEFAULT_MIN_REGION_MM3, DEFAULT_MIN_REGION_VOXELS
from .vocabulary import OptionNote
from .windowing import DEFAULT_THRESHOLD

#: how a run's user gets past too little overlap with the atlas (a run takes no transform)
#: (``vocabulary.OptionError`` parts: ``min_overlap=`` in the library and the Slicer logic, ``--min-overlap`` on the
#: command line)
RUN_OVERLAP_FIX = ("Register the scan to the atlas' template before explaining it, or lower ", ("min_overlap", None),
                   " to accept the partial overlap.")
#: an LRP map whose Σ|R| keeps less than this share of the explained value has no substance: refused
NO_SUBSTANCE = 1e-3
#: progress callback: (message, fraction done in [0, 1])
Progress = Callable[[str, float], None]


class Cancelled(Exception):
    """The user cancelled a run; nothing was added to the scene."""


@dataclass
class Settings:
    """Everything that decides a run's numbers and display."""

    preset: str | None = None     # None: the model card's recommended preset (see resolve)
    method: str = "lrp"              # or gradient, gradient_x_input, smoothgrad, gradcam, ...
    target: Any = None
    filter: str | None = None
    filter_range: tuple = (0.0, 1.0)
    filter_placement: str = "input"
    atlas: Any = None
    min_overlap: float = 0.5         # share of Σ|R| that must lie inside the atlas' brain
    min_region_voxels: float = DEFAULT_MIN_REGION_VOXELS  # smaller regions: listed, not ranked
    min_region_mm3: float = DEFAULT_MIN_REGION_MM3
    opacity: float = 0.5
    threshold: float = DEFAULT_THRESHOLD  # |R| below this fraction of the window is not drawn
    positive_only: bool = False
    alpha: float | None = None    # α of the αβ presets (β = α − 1); None: the preset's own
    table_required: bool = True      # with an atlas: no table, no run (False: keep the map, say why)
    engine_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .vocabulary import library_filter

        self.filter = library_filter(self.filter)  # "none" (a widget's word) and None are one "no filter"

    @property
    def label(self) -> str:
        """How the method appears in node names: "LRP epsilon-plus", "LRP αβ (α=3, β=2)", "gradcam++"."""
        from .provenance import method_label

        return method_label(self.method, self.preset, self.alpha)

    def resolve(self, card) -> Settings:
        """Fill what the card decides: the preset of an LRP run (lrp, summary), when none is given, is the
        card's recommended one (then checked: an option without effect with that preset is refused)."""
        if self.preset is None and self.runs_lrp():   # an LRP choice: other methods take no preset
            self.preset = card.recommended_preset
        self.check_effect()
        return self

    def check(self, where: str = "RelevanceLogic.run", names: tuple[str, ...] | None = None) -> Settings:
        """Refuse, before any work, keywords the method does not take (with the closest of ``names``, the keywords
        of the call ``where`` the user made: a run's settings unless told), rule parameters out of range, region
        options that cannot work and options without effect; returns these settings."""
        from .explanation.keywords import check_options
        from .regions.statistics import check_region_options

        check_options(self.method, self.engine_params, setting_names() if names is None else names, where)
        if self.runs_lrp():
            check_rule_numbers(self.engine_params)
        check_region_options(self.min_overlap, self.min_region_voxels, self.min_region_mm3)
        self.check_effect()
        return self

    def check_effect(self) -> None:
        """Refuse an option that would change nothing (α with an ε preset, a filter range without a filter, ...):
        the one check of every front end (:func:`vocabulary.check_without_effect`). A panel sends only the
        values of the controls that have an effect (:func:`panel.run_settings`)."""
        from .vocabulary import check_region_effect, check_without_effect

        given = {"alpha": self.alpha, **{k: self.engine_params.get(k) for k in ("epsilon", "gamma")}}
        check_without_effect(self.method, self.preset, given, self.filter, self.filter_range,
                             self.filter_placement, rules="rules" in self.engine_params, runs_lrp=self.runs_lrp())
        check_region_effect({"min_overlap": self.min_overlap, "min_region_voxels": self.min_region_voxels,
                             "min_region_mm3": self.min_region_mm3}, atlas=self.atlas is not None)

    def runs_lrp(self) -> bool:
        """Whether the run's map includes LRP with its preset: the lrp method, or a summary that lists LRP."""
        if self.method != "summary":
            return self.method == "lrp"
        from .explanation.dispatch import DEFAULT_SUMMARY, canonical

        return "lrp" in (canonical(m) for m in self.engine_params.get("methods") or DEFAULT_SUMMARY)

    def resolve_atlas_name(self) -> None:
        """Refuse, before anything runs, an atlas name that is neither bundled nor a file, and a file that cannot
        be read as a label map (its geometry included: :func:`regions.resolve_atlas`; it is cached for the run)."""
        from .regions.statistics import check_atlas_name, resolve_atlas

        check_atlas_name(self.atlas)
        if Path(str(self.atlas)).is_file():
            resolve_atlas(self.atlas)

    def engine_keywords(self) -> dict:
        """Keywords for ``explain`` beyond the preset: the engine's own plus α as a rule override."""
        params = dict(self.engine_params)
        if self.method != "lrp":
            return params
        if self.preset is None:
            raise ValueError("Settings.resolve(card) must run before engine_keywords(): the preset is not chosen yet.")
        from .engine.presets import preset_alpha

        if self.alpha is not None and self.preset in preset_alpha() and "rules" not in params:
            from .engine.rules import AlphaBeta

            if self.alpha < 1.0:
                raise InputError(f"α = {self.alpha} must be at least 1 (β = α − 1 ≥ 0).")
            params["rules"] = {"*": AlphaBeta(float(self.alpha), float(self.alpha) - 1.0)}
        return params


def check_rule_numbers(params: dict) -> None:
    """Refuse a negative or non-finite ε, γ or stabiliser of an LRP run before any work, naming the keyword (not
    the engine function the run calls later)."""
    from .engine.validate import nonnegative
    from .vocabulary import OPTIONS, OptionError

    for name in ("epsilon", "gamma", "stabilizer"):
        if params.get(name) is None:
            continue
        try:
            nonnegative(name, params[name])
        except InputError:
            example = OPTIONS[name].library_default if name in OPTIONS else 1e-6
            raise OptionError((name, params[name]), " must be a finite number >= 0, e.g. ", (name, example),
                              ".") from None


def setting_names() -> tuple[str, ...]:
    """The keywords of a run that are :class:`Settings` (the others go to the method)."""
    return tuple(name for name in Settings.__dataclass_fields__ if name != "engine_params")


@dataclass
class Job:
    """Inputs of one run (copied off the scene) and, after :func:`compute`, its results."""

    loaded: Any                      # models.LoadedModel with a card
    channels: list                   # [(array KJI, Grid)] one per model input channel
    volume_ids: list                 # MRML node IDs of the input volumes (for the run key)
    settings: Settings
    volume_names: list = field(default_factory=list)  # names of the input volumes (for the record)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    prepared: Any = None             # preprocessing.ModelInput
    explanation: Any = None          # engine Explanation (model space)
    class_index: Any = None
    raw: list = field(default_factory=list)    # per channel relevance on its own grid (KJI)
    table: Any = None                # region statistics DataFrame
    table_error: str = ""            # why the region table could not be made (the map still is)
    label: str = ""
    prediction: str = ""
    record: dict = field(default_factory=dict)  # provenance.build_record: what produced the results
    notes: list = field(default_factory=list)   # what the user should know about the inputs (in the record)

    def cancel(self) -> None:
        """Ask a running :func:`compute` to stop at its next stage."""
        self.cancel_event.set()

    @property
    def key(self) -> str:
        """Stable identifier of the inputs and settings (a re-run with the same key replaces)."""
        s = self.settings
        card = self.loaded.card
        payload = json.dumps({"volumes": list(self.volume_ids), "model": str(card.path or card.name),
                              "method": s.method, "preset": s.preset, "target": str(self.class_index),
                              "filter": s.filter, "range": [float(v) for v in s.filter_range],
                              "placement": s.filter_placement, "alpha": s.alpha,
                              "params": {k: str(v) for k, v in sorted(s.engine_params.items())}},
                             sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:16]


def compute(job: Job, progress: Progress | None = None) -> Job:
    """Do the heavy part of a run (no MRML access; safe on a worker thread)."""
    import torch

    from .engine.validate import ConservationWarning, caller_stacklevel, held_warnings
    from .preprocessing import prepare_input, resample

    def stage(message: str, fraction: float) -> None:
        if job.cancel_event.is_set():
            raise Cancelled("The run was cancelled; nothing was added to the scene.")
        if progress is not None:
            progress(message, fraction)

    s, card = job.settings, job.loaded.card
    from .scan_kind import scan_notes

    job.notes = scan_notes(job.channels, job.volume_names or list(card.input.channels))
    stage("Resampling into the model grid", 0.05)
    job.prepared = prepare_input(job.channels, card)
    job.class_index = resolve_target(s.target, card)
    stage(f"Running {s.label}", 0.2)
    with held_warnings() as held:  # the engine's conservation warnings wait for check_substance's verdict
        job.explanation = _explain(job, torch.from_numpy(job.prepared.array[None]))
    check_substance(job.explanation, s.method)
    for message in held:  # a refused map said why above; a kept one warns once, at the user's call
        warnings.warn(message, ConservationWarning, stacklevel=caller_stacklevel())
    relevance = job.explanation.relevance[0].numpy()
    stage("Resampling relevance onto the scan", 0.75)
    job.raw = [resample(relevance[c], job.prepared.grid, grid)
               for c, (_, grid) in enumerate(job.channels)]
    output = job.explanation.output[0]
    job.label = target_label(output, job.class_index, card)
    job.prediction = describe_prediction(output, card)
    from .provenance import build_record

    job.record = build_record(job)
    job.record["notes"] = list(job.notes)
    if s.atlas is not None:
        stage("Region statistics", 0.85)
        try:
            job.table = region_table(job, s.atlas, s.min_overlap, s.min_region_voxels, s.min_region_mm3)
        except InputError as exc:  # keep the relevance map; report why there is no table
            job.table_error = OptionNote(exc)  # the library's text; a command line spells its flags
    stage("Done", 1.0)
    return job


def _explain(job: Job, x: Any) -> Any:
    """The explanation of the prepared input ``x`` (batch of one) with the job's method and settings."""
    from .explanation.dispatch import explain
    from .preprocessing import box_keywords

    s = job.settings

    def zb() -> dict:   # the zB box of the card's input: masked voxels stay 0 (LRP runs only)
        return box_keywords(job.prepared.array[None], job.loaded.card.input.normalization,
                            support=job.prepared.support)

    if s.method == "lrp":
        every_layer = s.filter_placement == "every-layer"
        keywords = s.engine_keywords()
        if "low" not in keywords and "high" not in keywords:
            keywords.update(zb())
        return explain(job.loaded.model, x, method="lrp", preset=s.preset, target=job.class_index,
                       filter=s.filter if every_layer else None, filter_range=s.filter_range,
                       filter_placement=s.filter_placement, device=job.loaded.device, **keywords)
    if s.filter_placement == "every-layer":
        raise InputError("Filtering after every layer applies to LRP only; use placement 'input'.")
    keywords = s.engine_keywords()
    preset = None
    if s.method == "summary":   # its LRP part: the run's preset (the one its record names) and the same zB box
        preset = s.preset
        per_method = dict(keywords.get("method_options") or {})
        lrp_options = {**zb(), **per_method.get("lrp", {})}
        if lrp_options:
            per_method["lrp"] = lrp_options
            keywords["method_options"] = per_method
    return explain(job.loaded.model, x, method=s.method, preset=preset, target=job.class_index,
                   device=job.loaded.device, **keywords)


def check_substance(explanation: Any, method: str) -> None:
    """Refuse a map that shows nothing: zero everywhere, or (LRP, which conserves) keeping less than
    ``NO_SUBSTANCE`` of the explained value, as when the scan's data barely reach the model's grid."""
    relevance = explanation.relevance.double()
    value = float(explanation.target_value.double().abs().sum())
    kept = float(relevance.abs().sum())
    if kept > 0 and (method != "lrp" or value == 0 or kept >= NO_SUBSTANCE * value):
        return
    share = f" (Σ|R| = {kept:.3g}, {kept / value:.2g} of the explained value {value:.4g})" if value else ""
    raise InputError(
        f"The {method} map has no relevance in it{share}: nothing reached the input, so there is no map to show "
        "and nothing was written. Check that the scan is a brain registered to the model's input grid (the "
        "card's template space) and that the target is one the model responds to.")


def statistics_map(job: Job) -> np.ndarray:
    """The map region statistics use: the relevance on the overlay's grid (channel 0's scan grid),
    summed over input channels (other channels' maps are resampled onto that grid)."""
    from .preprocessing import resample

    grid = job.channels[0][1]
    total = np.array(job.raw[0], dtype=np.float32, copy=True)
    for c in range(1, len(job.raw)):
        other = job.channels[c][1]
        total += job.raw[c] if other.same_as(grid) else \
            resample(job.explanation.relevance[0, c].numpy(), job.prepared.grid, grid)
    return total


def region_table(job: Job, atlas: Any, min_overlap: float = 0.5,
                 min_region_voxels: float = DEFAULT_MIN_REGION_VOXELS,
                 min_region_mm3: float = DEFAULT_MIN_REGION_MM3):
    """Region statistics of a computed job on the overlay's scan grid (the one path for every front end)."""
    from .provenance import regions_entry
    from .regions.scan_tables import heatmap_region_table
    from .regions.statistics import AtlasOverlapError

    record = {**job.record, "regions": regions_entry(atlas, min_overlap, min_region_voxels, min_region_mm3)}
    try:
        return heatmap_region_table(statistics_map(job), job.channels[0][1], atlas,
                                    min_overlap=min_overlap, min_region_voxels=min_region_voxels,
                                    min_region_mm3=min_region_mm3, record=record)
    except AtlasOverlapError as exc:  # a run has no transform= (the library's way out)
        raise exc.with_fix(*RUN_OVERLAP_FIX) from None


def resolve_target(target: Any, card) -> Any:
    """A class name from the card becomes its index; other targets pass through unchanged."""
    if isinstance(target, str):
        classes = list(card.output.classes)
        if target not in classes and (card.output.type != "classification" or not classes):
            raise InputError(f"'{target}' is not a class of this model: it is a {card.output.type} model "
                             f"{'without class names' if not classes else 'whose outputs are ' + ', '.join(classes)}, "
                             "so the target is an output index (0 for a single output); leave the target out "
                             "to explain the model's output.")
        if target not in classes:
            raise InputError(f"Unknown target class '{target}'; the model's classes are {classes}.")
        return classes.index(target)
    return target


def target_label(output, class_index: Any, card) -> str:
    """Short name of what was explained, for node names ("AD", "age", "lesion")."""
    classes = list(card.output.classes)
    if card.output.type == "regression":
        return classes[0] if classes else "output"
    if card.output.type == "classification":
        index = int(output.argmax()) if class_index is None else int(class_index)
        return classes[index] if index < len(classes) else f"class {index}"
    index = (1 if output.shape[0] > 1 else 0) if class_index is None else int(class_index)
    return classes[index] if index < len(classes) else f"channel {index}"


def describe_prediction(output, card) -> str:
    """One line saying what the network predicted, in the card's terms."""
    import torch

    kind = card.output.type
    if kind == "classification":
        probabilities = torch.softmax(output.double().flatten(), 0)
        best = int(probabilities.argmax())
        names = card.output.classes or tuple(str(i) for i in range(len(probabilities)))
        return f"{names[best]} (p = {float(probabilities[best]):.3f})"
    if kind == "regression":
        warning = prediction_warning(output, card)
        return f"{float(output.flatten()[0]):.2f} {card.output.units}".strip() + (f" ({warning})" if warning else "")
    foreground = int((output.argmax(0) > 0).sum()) if output.shape[0] > 1 else int((output > 0).sum())
    return f"{foreground} foreground voxels"


def prediction_warning(output, card) -> str:
    """"" or a note that a regression output lies outside the card's stated training range (``output.range``)."""
    span = getattr(card.output, "range", None)
    if card.output.type != "regression" or not span:
        return ""
    value = float(output.flatten()[0])
    if span[0] <= value <= span[1]:
        return ""
    units = f" {card.output.units}" if card.output.units else ""
    return (f"⚠ {value:.2f}{units} is outside the model's training range {span[0]:g}–{span[1]:g}{units}: "
            "an extrapolation, not a measurement")

