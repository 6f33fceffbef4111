"""What the page starts with: every state value the page reads, and which of them trigger what."""
from __future__ import annotations

from .. import panel, vocabulary

#: state names that only change the display: handled from the cache, never by a new run
DISPLAY_KEYS = ("filter_type", "filter_range", "opacity", "threshold", "positive_only")
#: state names a run depends on: a change marks the shown result out of date
RUN_KEYS = ("method", "preset", "epsilon", "gamma", "alpha", "target", "filter_type", "filter_range",
            "filter_placement", "atlas", "min_overlap")
#: every setting a run reads; the Run button sends them with its click
PAGE_SETTINGS = tuple(dict.fromkeys(RUN_KEYS + DISPLAY_KEYS))
#: the page's state names of the run options (``vocabulary.OPTIONS``) where they differ from the keyword names
PAGE_NAMES = {"filter": "filter_type"}


def option_state() -> dict:
    """The start values of the run options on the page (``vocabulary.OPTIONS``), by page state name."""
    names = {PAGE_NAMES.get(name, name): name for name in vocabulary.OPTIONS}
    state = {key: vocabulary.OPTIONS[names[key]].web_default for key in PAGE_SETTINGS if key in names}
    state["filter_range"] = list(state["filter_range"])
    return state


def page_defaults(app, autorun: bool) -> dict:
    """The page's state before anything is loaded (``app``: the RelevanceWebApp)."""
    from ..demo_run import DEMO_ATLAS, DEMO_SETTINGS
    from .app import DEMO_MODEL

    return dict(
        input_source="demo", demo_diagnosis="AD", demo_age=78, server_path="",
        model_items=app.model_items, model_choice=DEMO_MODEL, model_path="",
        model_info="", model_details="", model_use="", method_items=panel.METHODS, preset_items=panel.PRESETS,
        preset_controls=preset_controls(),
        target_items=[panel.PREDICTED], filter_items=panel.FILTERS, placement_items=panel.PLACEMENTS,
        **{**option_state(), "atlas": DEMO_ATLAS, "min_overlap": DEMO_SETTINGS["min_overlap"]},
        atlas_items=list(app.atlases),
        busy=False, progress=0, progress_message="", error="", error_where="run", info="",
        summary="", pinned_summary="", caption="", input_name="", has_run=False,
        has_table=False, runs_started=0, overlay_updates=0, table_rows=[],
        table_headers=table_headers(), chart_rows=[], chart_caption="", autorun=autorun,
        download_names=app.session.file_names(), upload_token=app.upload_token,
        roots=app.session.gate.describe())


def preset_controls() -> dict[str, list[str]]:
    """The rule parameters each preset's rules use (its other fields are disabled on the page; not sent)."""
    return {p: sorted(panel.active_controls("lrp", p, vocabulary.NO_FILTER)) for p in panel.PRESETS}


def table_headers() -> list[dict]:
    """Column titles of the region table."""
    from .reading import TABLE_COLUMNS

    titles = {"rank": "#", "name": "Region", "voxels": "Voxels", "density": "Density",
              "fraction_pos": "Share of R⁺", "sum_pos": "ΣR⁺", "sum_neg": "ΣR⁻"}
    return [{"title": titles[c], "key": c} for c in TABLE_COLUMNS]
