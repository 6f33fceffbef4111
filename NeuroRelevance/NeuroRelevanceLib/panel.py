"""What the module panel offers, shared by every front end (Slicer module, web viewer).

The choices (methods, presets, filters, ...), the translation of panel values into the keyword
arguments of :meth:`logic.RelevanceLogic.prepare`, and the one-line result summary live here so
that the Slicer widget and the browser app cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from . import vocabulary as _vocabulary
from .engine import presets as _presets
from .explanation.keywords import LRP_METHODS
from .vocabulary import NO_ATLAS, NO_FILTER, PREDICTED, library_filter  # noqa: F401 - the widgets' words
from .windowing import DEFAULT_THRESHOLD  # noqa: F401 - the display threshold every front end starts from

#: ``PRESETS`` (the presets the panel and the web page offer) and ``PRESET_ALPHA`` (α of the αβ presets; the α
#: field follows the preset unless the user changes it) are read from the engine's registry
#: (``engine/presets.py``) on every access, so a preset registered later is offered too (``__getattr__``).
_LIVE = {"PRESETS": lambda: _vocabulary.OPTIONS["preset"].items, "PRESET_ALPHA": _presets.preset_alpha}


def __getattr__(name: str) -> Any:
    if name in _LIVE:
        return _LIVE[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the choices every panel offers, from the one option vocabulary (``vocabulary.OPTIONS``)
METHODS = _vocabulary.OPTIONS["method"].items
FILTERS = _vocabulary.OPTIONS["filter"].items
PLACEMENTS = _vocabulary.OPTIONS["filter_placement"].items
DEVICES = _vocabulary.OPTIONS["device"].items


def active_controls(method: str, preset: str, filter_type: str) -> set[str]:
    """The controls of rule parameters and filter options that have an effect with these choices: "epsilon",
    "gamma", "alpha" (read from the preset registry), "filter_range" and "filter_placement" (with a filter).
    A panel shows the others as inactive, and :func:`run_settings` does not send them."""
    active: set[str] = set()
    if method == "lrp":
        active.update(n for n in ("epsilon", "gamma") if n in _presets.preset_parameters().get(preset, ()))
        if preset in _presets.preset_alpha():
            active.add("alpha")
    if library_filter(filter_type) is not None:
        active.update(("filter_range", "filter_placement"))
    return active


def run_settings(*, method: str, preset: str, target: str | None, filter_type: str,
                 filter_low: float, filter_high: float, filter_placement: str, opacity: float,
                 threshold: float, positive_only: bool, atlas: Any, epsilon: float,
                 gamma: float, alpha: float, min_overlap: float = 0.5) -> dict:
    """Keyword arguments of ``RelevanceLogic.prepare``/``run`` from the panel's values.

    ``target`` "predicted" (or empty) explains the predicted class; ``filter_type`` "none" means
    no filter; ``atlas`` "none" means no region table. A panel always holds a value in every control,
    also in those without effect: only the controls :func:`active_controls` names are sent (ε and γ when
    the preset's rules use them; α only when the user moved it away from the αβ preset's own value; the
    filter range and placement only with a filter; the minimum overlap only with an atlas), so the run's check
    of options without effect (``jobs.Settings.check_effect``) refuses only what a console or command-line user
    typed.
    """
    active = active_controls(method, preset, filter_type)
    settings = dict(method=method, preset=preset if method in LRP_METHODS else None,
                    target=None if target in (None, "", PREDICTED) else target,
                    filter=library_filter(filter_type), opacity=float(opacity),
                    threshold=float(threshold), positive_only=bool(positive_only),
                    atlas=None if atlas in (None, "", NO_ATLAS) else atlas)
    if settings["atlas"] is not None:  # without an atlas the overlap has no effect (and would be refused)
        settings["min_overlap"] = float(min_overlap)
    if "filter_range" in active:
        settings.update(filter_range=(float(filter_low), float(filter_high)), filter_placement=filter_placement)
    settings.update({name: float(value) for name, value in (("epsilon", epsilon), ("gamma", gamma))
                     if name in active})
    if "alpha" in active and float(alpha) != _presets.preset_alpha()[preset]:
        settings["alpha"] = float(alpha)
    return settings


def display_filter(run, filter_type: str) -> str | None:
    """The filter a refresh from the cache applies (none for runs filtered at every layer)."""
    if library_filter(filter_type) is None or run.job.settings.filter_placement == "every-layer":
        return None
    return filter_type


def result_summary(run) -> str:
    """What a finished run shows: prediction, target score, conservation, time and device, then
    what produced it (method, rule parameters, target, filter, atlas, model), and the run's notes on its inputs."""
    from .provenance import summary
    from .scene_export import empty_note

    e = run.explanation
    text = (f"Prediction: {run.prediction}; target {run.job.label} = {float(e.target_value[0]):.4g}; "
            f"conservation error {e.max_conservation_error:.2e}; {e.seconds:.1f} s on {e.device}\n"
            f"{summary(run.record)}")
    for note in run.record.get("notes") or ():   # what the user should know about the inputs (e.g. a label map)
        text += f"\n⚠ Note: {note}"
    empty = empty_note(run.node) if run.node is not None and run.node.GetScene() is not None else None
    if empty:   # a display filter that keeps no voxel: no overlay to see
        text += f"\n⚠ Note: {empty}"
    if run.job.table_error:
        text += f"\nNo region table: {run.job.table_error}"
    return text


def stale_text(run, settings: dict, model: Any = None, volumes: Any = None) -> str:
    """"" while the shown run matches the panel's settings, else a line saying what changed."""
    reasons = run.stale_reasons(settings, model=model, volumes=volumes)
    if not reasons:
        return ""
    return f"⚠ Out of date ({'; '.join(reasons)}): the overlay shows the earlier run. Apply to update."


def results_text(run, settings: dict | None = None, model: Any = None, volumes: Any = None,
                 event: str = "", error: Any = None) -> str:
    """The text beside Apply: what the shown run is (marked when out of date), and what happened to
    the last Apply when it did not finish (``event`` "cancelled" or "failed" with its ``error``)."""
    lines = []
    if event:
        lines.append("Cancelled: nothing was changed." if event == "cancelled" else f"Run failed: {error}")
    if run is None:
        return "\n".join(lines)
    if event:
        lines.append("The overlay still shows the earlier run:")
    lines.append(result_summary(run))
    if settings is not None:
        lines.append(stale_text(run, settings, model, volumes))
    return "\n".join(line for line in lines if line)


def card_summary(card) -> str:
    """What a model card says the model expects and returns, and which preset it recommends and why."""
    return (f"{card.name}: channels {', '.join(card.input.channels)}; {card.output.type}\n"
            f"{recommendation_text(card)}")


def recommendation_text(card) -> str:
    """The card's recommended preset and why, in plain words, from the card's ``evidence`` (the figures on scans
    the model never saw, against the bar, and the rule's why; :func:`.recommendation.plain_text`)."""
    from .recommendation import plain_text

    return plain_text(card)


def recommendation_details(card) -> str:
    """The technical version of :func:`recommendation_text` (a tooltip; ``compare`` prints it):
    :func:`.recommendation.details_text`."""
    from .recommendation import details_text

    return details_text(card)


def intended_use_text(card) -> str:
    """The card's intended use and limits for the panel, or a warning (starting with ⚠) if it has none."""
    from .provenance import use_lines

    return "\n".join(use_lines(card.use_warning, card.intended_use, card.limitations))


def installed_atlases() -> list[str]:
    """Names of the bundled atlases whose package is installed (empty when pandas is missing)."""
    try:
        from .regions import available_atlases
    except ImportError:
        return []
    return [a["name"] for a in available_atlases() if a.get("installed", True)]
