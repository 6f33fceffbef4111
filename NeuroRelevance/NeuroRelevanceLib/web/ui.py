"""The page: the Slicer module's sections in a left drawer, slice views and results on the right.

Element ids (``nr-...``) are stable: the browser tests and users' own automation click them.
"""
from __future__ import annotations

from ..vocabulary import NO_FILTER, OPTIONS
from .defaults import PAGE_SETTINGS

DOWNLOADS = (("heatmap", "Relevance map, raw (.nii.gz)", "application/gzip", "mdi-brain"),
             ("displayed", "Map as displayed, filtered (.nii.gz)", "application/gzip", "mdi-filter"),
             ("table", "Regions (.csv)", "text/csv", "mdi-table"),
             ("scene", "Scene (.mrb)", "application/zip", "mdi-download"))


def build_ui(app):
    """Build the single-page layout bound to ``app``'s state and controller; returns it."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import client, html
    from trame.widgets import vuetify3 as v

    from .grid import build_grid, build_readout
    from .uploads import UPLOAD_SCRIPT

    with SinglePageWithDrawerLayout(app.server, width=400) as layout:
        layout.title.set_text("NeuroRelevance")
        with layout.toolbar:
            v.VSpacer()
            html.Span("{{ input_name }}", id="nr-input-name", classes="text-body-2 mr-4")
            v.VSelect(v_model=("layout",), items=("layout_items",), density="compact", hide_details=True,
                      style="max-width: 200px;", id="nr-layout", label="Layout")
            v.VBtn(icon="mdi-fit-to-screen", click=app.ctrl.reset_views, variant="plain",
                   id="nr-reset-views", title="Reset the slice views")
        with layout.drawer:
            client.Script(UPLOAD_SCRIPT)
            _run_bar(app, v, html)
            with v.VExpansionPanels(v_model=("panels", list(PANELS)), multiple=True, variant="accordion"):
                _inputs(app, v)
                _method(v)
                _filter(v)
                _display(v)
                _regions(v)
                _save(v, html)
        # the page's height (under the tool bar, above trame's footer), whatever the content
        with layout.content, html.Div(style="display: flex; flex-direction: column; height: calc(100vh - 88px);"):
            # sizes never follow the content: the views keep their size when results arrive
            with html.Div(style="flex: 1 1 0; display: flex; min-height: 320px; overflow: hidden;",
                          id="nr-views"):
                build_grid(app, html)
            build_readout(html)
            _results(v, html)
    return layout


PANELS = ("inputs", "method", "filter", "display", "regions", "save")


def _error(v, where: str) -> None:
    """The page's error message, shown beside the control that caused it (one place at a time)."""
    condition = (f"error && error_where === '{where}'" if where != "run" else
                 "error && !['inputs', 'save', 'display', 'results'].includes(error_where)")
    v.VAlert(v_if=condition, text=("error",), type="error", density="compact", closable=True,
             id="nr-error", classes="my-2", style="white-space: pre-line;",
             click_close="error = ''")


def _run_bar(app, v, html) -> None:
    """Run, Cancel and the side-by-side pin, always in view at the top of the panel, with the
    result line (what the shown run is, whether it is out of date) and Run's errors."""
    with html.Div(id="nr-runbar", classes="pa-3",
                  style="position: sticky; top: 0; z-index: 5; background: white; "
                        "border-bottom: 1px solid #ddd;"):
        with v.VRow(dense=True):
            with v.VCol(cols=5):
                v.VBtn("Run", click=(app.ctrl.run, f"[{{{', '.join(PAGE_SETTINGS)}}}]"), color="primary",
                       block=True, id="nr-run",
                       disabled=("busy",), prepend_icon="mdi-play")
            with v.VCol(cols=3):
                v.VBtn("Cancel", click=app.ctrl.cancel, block=True, id="nr-cancel", disabled=("!busy",))
            with v.VCol(cols=4):
                v.VBtn("Pin", v_if="!pinned_summary", click=app.ctrl.pin, block=True, id="nr-pin",
                       disabled=("busy || !has_run",), prepend_icon="mdi-pin", variant="tonal",
                       title="Keep this run beside the next one (side by side)")
                v.VBtn("Unpin", v_else=True, click=app.ctrl.unpin, block=True, id="nr-unpin",
                       disabled=("busy",), prepend_icon="mdi-pin-off", variant="tonal")
        with v.VProgressLinear(v_if="busy", model_value=("progress",), height=18, classes="mt-2",
                               id="nr-progress"):
            html.Span("{{ progress_message }} {{ progress }} %", classes="text-caption")
        _error(v, "run")
        html.Div("{{ summary }}", classes="text-caption mt-2", id="nr-summary",
                 style="white-space: pre-line; line-height: 1.35;")
        html.Div("{{ pinned_summary }}", v_if="pinned_summary", classes="text-caption mt-1",
                 id="nr-pinned", style="color: #6a4bb0;")
        html.Div("{{ info }}", classes="text-caption", id="nr-info", style="color: #666;")


def _inputs(app, v) -> None:
    from trame.widgets import html

    with v.VExpansionPanel(value="inputs", id="nr-panel-inputs"):
        v.VExpansionPanelTitle("Inputs")
        with v.VExpansionPanelText():
            with v.VBtnToggle(v_model=("input_source", "demo"), mandatory=True, density="compact",
                              divided=True, classes="mb-2"):
                v.VBtn("Demo", value="demo", id="nr-source-demo")
                v.VBtn("Server file", value="server", id="nr-source-server")
                v.VBtn("Upload", value="upload", id="nr-source-upload")
            with v.VRow(v_if="input_source === 'demo'", dense=True):
                with v.VCol(cols=5):
                    v.VSelect(v_model=("demo_diagnosis",), items=("['AD', 'CN']",), label="Diagnosis",
                              density="compact", hide_details=True)
                with v.VCol(cols=3):
                    v.VTextField(v_model_number=("demo_age",), type="number", label="Age",
                                 density="compact", hide_details=True)
                with v.VCol(cols=4):
                    v.VBtn("Load", click=app.ctrl.load_demo, id="nr-load-demo", block=True,
                           disabled=("busy",))
            with v.VRow(v_if="input_source === 'server'", dense=True):
                with v.VCol(cols=9):
                    v.VTextField(v_model=("server_path",), label="Volume file (.nii.gz, .nrrd, ...)",
                                 hint=("'inside ' + roots",), persistent_hint=True, density="compact",
                                 id="nr-server-path")
                with v.VCol(cols=3):
                    v.VBtn("Load", click=(app.ctrl.load_server_file, "[server_path]"), id="nr-load-file",
                           disabled=("busy",))
            # no v_model: the file goes to the server by HTTP (web/uploads.py), never into the state
            v.VFileInput(v_if="input_source === 'upload'", label="Upload a scan",
                         accept=".nii,.nii.gz,.gz,.nrrd,.mha", density="compact", show_size=True,
                         id="nr-upload", disabled=("busy",),
                         update_modelValue="utils.get('nrUpload')($event, upload_token)")
            v.VSelect(v_model=("model_choice",), label="Model", classes="mt-3", density="compact",
                      items=("model_items.concat([{title: 'Model file on the server…', value: 'path'}])",),
                      hide_details=True, id="nr-model", disabled=("busy",))
            with v.VRow(v_if="model_choice === 'path'", dense=True, classes="mt-1"):
                with v.VCol(cols=9):
                    v.VTextField(v_model=("model_path",), label="Model card (.json) or TorchScript",
                                 density="compact", hide_details=True, id="nr-model-path")
                with v.VCol(cols=3):
                    v.VBtn("Load", click=(app.ctrl.load_model_path, "[model_path]"), id="nr-load-model")
            v.VLabel("{{ model_info }}", classes="text-caption mt-1", id="nr-model-info",
                     style="white-space: normal;", title=("model_details",))   # the technical version
            html.Div("{{ model_use }}", id="nr-model-use", classes="text-caption mt-1",
                     style=("model_use.startsWith('⚠') ? 'white-space: pre-line; color: #b45f06;' : "
                            "'white-space: pre-line; color: #555;'",))
            _error(v, "inputs")


def _method(v) -> None:
    with v.VExpansionPanel(value="method", id="nr-panel-method"):
        v.VExpansionPanelTitle("Method and target")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("method",), items=("method_items",), label=OPTIONS["method"].label,
                      title=OPTIONS["method"].help, density="compact", id="nr-method")
            with v.VRow(v_if="method === 'lrp'", dense=True):
                with v.VCol(cols=12):
                    v.VSelect(v_model=("preset",), items=("preset_items",), label=OPTIONS["preset"].label,
                              title=OPTIONS["preset"].help, density="compact", hide_details=True,
                              id="nr-preset")
                for name in ("epsilon", "gamma", "alpha"):
                    low, high = OPTIONS[name].bounds
                    with v.VCol(cols=4):
                        v.VTextField(v_model_number=(name,), label=OPTIONS[name].label,
                                     title=f"{OPTIONS[name].help} in [{low:g}, {high:g}]",
                                     density="compact", hide_details=True, id=f"nr-rule-{name}",
                                     disabled=(f"!(preset_controls[preset] || []).includes('{name}')",))
            v.VSelect(v_model=("target",), items=("target_items",), label=OPTIONS["target"].label,
                      title=OPTIONS["target"].help, density="compact", classes="mt-3", hide_details=True,
                      id="nr-target")


def _span(name: str) -> dict:
    """``min``/``max`` of a slider: the option's range in the vocabulary (``vocabulary.OPTIONS``)."""
    low, high = OPTIONS[name].bounds
    return {"min": low, "max": high}


def _filter(v) -> None:
    with v.VExpansionPanel(value="filter", id="nr-panel-filter"):
        v.VExpansionPanelTitle("Filter")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("filter_type",), items=("filter_items",), label=OPTIONS["filter"].label,
                      title=OPTIONS["filter"].help, density="compact", hide_details=True,
                      id="nr-filter-type")
            v.VRangeSlider(v_model=("filter_range",), **_span("filter_range"), step=0.01,
                           label=OPTIONS["filter_range"].label,
                           thumb_label=True, hide_details=True, classes="mt-4", id="nr-filter-range",
                           disabled=(f"filter_type === '{NO_FILTER}'",),
                           title=OPTIONS["filter_range"].help)
            v.VSelect(v_model=("filter_placement",), items=("placement_items",),
                      label=OPTIONS["filter_placement"].label, title=OPTIONS["filter_placement"].help,
                      density="compact", hide_details=True, id="nr-placement",
                      disabled=(f"filter_type === '{NO_FILTER}'",))


def _display(v) -> None:
    with v.VExpansionPanel(value="display", id="nr-panel-display"):
        v.VExpansionPanelTitle("Display")
        with v.VExpansionPanelText():
            v.VSlider(v_model=("opacity",), **_span("opacity"), step=0.05, label=OPTIONS["opacity"].label,
                      title=OPTIONS["opacity"].help, thumb_label=True, hide_details=True, id="nr-opacity")
            v.VSlider(v_model=("threshold",), **_span("threshold"), step=0.01, label=OPTIONS["threshold"].label,
                      thumb_label=True, hide_details=True, id="nr-threshold", title=OPTIONS["threshold"].help)
            v.VCheckbox(v_model=("positive_only",), label=OPTIONS["positive_only"].label,
                        title=OPTIONS["positive_only"].help, density="compact", hide_details=True,
                        id="nr-positive-only")
            with v.VRow(dense=True, classes="mt-1"):
                with v.VCol(cols=6):
                    v.VTextField(v_model_number=("scan_window",), type="number", label="Scan window",
                                 density="compact", hide_details=True, id="nr-scan-window")
                with v.VCol(cols=6):
                    v.VTextField(v_model_number=("scan_level",), type="number", label="Scan level",
                                 density="compact", hide_details=True, id="nr-scan-level")
            v.VLabel("Left-drag in a view: window/level of the scan · click or Shift+move: crosshair "
                     "(every view jumps there) · wheel: slice · right-drag: zoom · middle-drag: pan",
                     classes="text-caption mt-1", style="white-space: normal; line-height: 1.3;")
            _error(v, "display")


def _regions(v) -> None:
    with v.VExpansionPanel(value="regions", id="nr-panel-regions"):
        v.VExpansionPanelTitle("Region statistics")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("atlas",), items=("atlas_items",), label=OPTIONS["atlas"].label,
                      title=OPTIONS["atlas"].help, density="compact", hide_details=True, id="nr-atlas")


def _save(v, html) -> None:
    with v.VExpansionPanel(value="save", id="nr-panel-save"):
        v.VExpansionPanelTitle("Save")
        with v.VExpansionPanelText():
            with html.Div(classes="d-flex flex-column ga-1"):
                for key, label, mime, icon in DOWNLOADS:
                    condition = "!has_run || busy" + {"table": " || !has_table",
                                                      "displayed": f" || filter_type === '{NO_FILTER}'"}.get(key, "")
                    v.VBtn(label, prepend_icon=icon, variant="tonal", density="compact",
                           id=f"nr-download-{key}", disabled=(condition,),
                           click=f"trigger('download_{key}').then((data) => data && "
                                 f"utils.download(download_names.{key}, data, '{mime}'))")
            _error(v, "save")


def _results(v, html) -> None:
    with html.Div(style="flex: 0 0 32%; display: flex; min-height: 220px; overflow: hidden;",
                  classes="pa-2 ga-3", id="nr-results"):
        with html.Div(style="flex: 3; overflow: auto;"):
            _error(v, "results")
            v.VDataTable(items=("table_rows",), headers=("table_headers",), density="compact",
                         items_per_page=8, id="nr-table", hover=True,
                         raw_attrs=['@click:row="(e, row) => trigger(\'nr_jump\', [row.item.label])"',
                                    ':row-props="(r) => ({class: r.item.ranked ? \'nr-row\' : '
                                    '\'nr-row nr-unranked text-medium-emphasis\', '
                                    'style: \'cursor: pointer\', title: \'Show this region in the views\'})"'])
        with html.Div(style="flex: 2; overflow: auto;", id="nr-chart"):
            html.Div("Relevance density, top regions (mean relevance per voxel)", v_if="chart_rows.length",
                     classes="text-subtitle-2 mb-1")
            with html.Div(v_for="bar in chart_rows", key="bar.name", classes="nr-bar d-flex align-center",
                          style="gap: 8px; margin: 3px 0; cursor: pointer;",
                          click="trigger('nr_jump', [bar.label])"):
                html.Span("{{ bar.name }}", classes="nr-bar-label",
                          style="flex: 0 0 36%; font-size: 13px; text-align: right; white-space: nowrap; "
                                "overflow: hidden; text-overflow: ellipsis;")
                with html.Div(style="flex: 1; height: 14px;"):
                    html.Div(classes="nr-bar-fill",
                             style=("`height: 100%; width: ${bar.width}%; background: "
                                    "${bar.negative ? '#2e6da4' : '#c0392b'};`",))
                html.Span("{{ bar.text }}", classes="nr-bar-value", style="flex: 0 0 64px; font-size: 12px;")
            html.Div("{{ chart_caption }}", id="nr-chart-caption", classes="mt-2",
                     style="white-space: pre-line; font-size: 12px; color: #555;")
