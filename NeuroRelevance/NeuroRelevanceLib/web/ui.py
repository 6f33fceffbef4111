"""The page: the Slicer module's sections in a left drawer, slice views and results on the right.

Element ids (``nr-...``) are stable: the browser tests and users' own automation click them.
"""
from __future__ import annotations

DOWNLOADS = (("heatmap", "Heatmap (.nii.gz)", "application/gzip", "mdi-brain"),
             ("table", "Regions (.csv)", "text/csv", "mdi-table"),
             ("scene", "Scene (.mrb)", "application/zip", "mdi-download"))


def build_ui(app):
    """Build the single-page layout bound to ``app``'s state and controller; returns it."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with SinglePageWithDrawerLayout(app.server, width=380) as layout:
        layout.title.set_text("NeuroRelevance")
        with layout.toolbar:
            v.VSpacer()
            html.Span("{{ input_name }}", id="nr-input-name", classes="text-body-2 mr-4")
            v.VSelect(v_model=("layout", "Three slices"), items=("layout_items", list(_layout_names())),
                      density="compact", hide_details=True, style="max-width: 200px;",
                      id="nr-layout", label="Layout")
            v.VBtn(icon="mdi-fit-to-screen", click=app.ctrl.reset_views, variant="plain",
                   id="nr-reset-views", title="Reset the slice views")
        with layout.drawer:
            from trame.widgets import client

            from .uploads import UPLOAD_SCRIPT

            client.Script(UPLOAD_SCRIPT)
            v.VAlert(v_if="error", text=("error",), type="error", density="compact", closable=True,
                     id="nr-error", classes="ma-2", click_close=app.ctrl.dismiss_error)
            with v.VExpansionPanels(v_model=("panels", ['inputs', 'method', 'filter', 'display', 'regions', 'run']), multiple=True,
                                    variant="accordion"):
                _inputs(app, v)
                _method(v)
                _filter(v)
                _display(v)
                _regions(v)
                _run(app, v, html)
        with layout.content:
            with html.Div(style="display: flex; flex-direction: column; height: 100%;"):
                with html.Div(style="flex: 1 1 68%; display: flex; min-height: 300px;", id="nr-views"):
                    app.layouts.initialize_layout_grid(layout)
                _results(v, html)
    return layout


def _layout_names():
    from .layouts import layouts

    return layouts().keys()


def _inputs(app, v) -> None:
    with v.VExpansionPanel(value="inputs"):
        v.VExpansionPanelTitle("Inputs")
        with v.VExpansionPanelText():
            with v.VBtnToggle(v_model=("input_kind", "demo"), mandatory=True, density="compact",
                              divided=True, classes="mb-2"):
                v.VBtn("Demo", value="demo", id="nr-kind-demo")
                v.VBtn("Server file", value="server", id="nr-kind-server")
                v.VBtn("Upload", value="upload", id="nr-kind-upload")
            with v.VRow(v_if="input_kind === 'demo'", dense=True):
                with v.VCol(cols=5):
                    v.VSelect(v_model=("demo_diagnosis",), items=("['AD', 'CN']",), label="Diagnosis",
                              density="compact", hide_details=True)
                with v.VCol(cols=3):
                    v.VTextField(v_model_number=("demo_age",), type="number", label="Age",
                                 density="compact", hide_details=True)
                with v.VCol(cols=4):
                    v.VBtn("Load", click=app.ctrl.load_demo, id="nr-load-demo", block=True,
                           disabled=("busy",))
            with v.VRow(v_if="input_kind === 'server'", dense=True):
                with v.VCol(cols=9):
                    v.VTextField(v_model=("server_path",), label="Volume file (.nii.gz, .nrrd, ...)",
                                 hint=("'inside ' + roots",), persistent_hint=True, density="compact",
                                 id="nr-server-path")
                with v.VCol(cols=3):
                    v.VBtn("Load", click=app.ctrl.load_server_file, id="nr-load-file",
                           disabled=("busy",))
            # no v_model: the file goes to the server by HTTP (web/uploads.py), never into the state
            v.VFileInput(v_if="input_kind === 'upload'", label="Upload a scan",
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
                    v.VBtn("Load", click=app.ctrl.load_model_path, id="nr-load-model")
            v.VLabel("{{ model_info }}", classes="text-caption mt-1", id="nr-model-info",
                     style="white-space: normal;")


def _method(v) -> None:
    with v.VExpansionPanel(value="method"):
        v.VExpansionPanelTitle("Method and target")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("method",), items=("method_items",), label="Method", density="compact",
                      id="nr-method")
            with v.VRow(v_if="method === 'lrp'", dense=True):
                with v.VCol(cols=12):
                    v.VSelect(v_model=("preset",), items=("preset_items",), label="LRP rule preset",
                              density="compact", hide_details=True, id="nr-preset")
                for name, label in (("epsilon", "ε"), ("gamma", "γ"), ("alpha", "α (αβ rules)")):
                    with v.VCol(cols=4):
                        v.VTextField(v_model_number=(name,), label=label,
                                     density="compact", hide_details=True, id=f"nr-rule-{name}")
            v.VSelect(v_model=("target",), items=("target_items",), label="Target", density="compact",
                      classes="mt-3", hide_details=True, id="nr-target")


def _filter(v) -> None:
    with v.VExpansionPanel(value="filter"):
        v.VExpansionPanelTitle("Filter")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("filter_type",), items=("filter_items",), label="Filter type",
                      density="compact", hide_details=True, id="nr-filter-type")
            v.VRangeSlider(v_model=("filter_range",), min=0, max=1, step=0.01, label="α range",
                           thumb_label=True, hide_details=True, classes="mt-4", id="nr-alpha-range",
                           disabled=("filter_type === 'none'",))
            v.VSelect(v_model=("filter_placement",), items=("placement_items",),
                      label="Applied", density="compact", hide_details=True, id="nr-placement")


def _display(v) -> None:
    with v.VExpansionPanel(value="display"):
        v.VExpansionPanelTitle("Display")
        with v.VExpansionPanelText():
            v.VSlider(v_model=("opacity",), min=0, max=1, step=0.05, label="Opacity",
                      thumb_label=True, hide_details=True, id="nr-opacity")
            v.VSlider(v_model=("threshold",), min=0, max=0.95, step=0.01, label="Threshold",
                      thumb_label=True, hide_details=True, id="nr-threshold")
            v.VCheckbox(v_model=("positive_only",), label="Positive relevance only",
                        density="compact", hide_details=True, id="nr-positive-only")


def _regions(v) -> None:
    with v.VExpansionPanel(value="regions"):
        v.VExpansionPanelTitle("Region statistics")
        with v.VExpansionPanelText():
            v.VSelect(v_model=("atlas",), items=("atlas_items",), label="Atlas", density="compact",
                      hide_details=True, id="nr-atlas")


def _run(app, v, html) -> None:
    with v.VExpansionPanel(value="run"):
        v.VExpansionPanelTitle("Run and save")
        with v.VExpansionPanelText():
            with v.VRow(dense=True):
                with v.VCol(cols=8):
                    v.VBtn("Run", click=app.ctrl.run, color="primary", block=True, id="nr-run",
                           disabled=("busy",), prepend_icon="mdi-play")
                with v.VCol(cols=4):
                    v.VBtn("Cancel", click=app.ctrl.cancel, block=True, id="nr-cancel",
                           disabled=("!busy",))
            with v.VProgressLinear(v_if="busy", model_value=("progress",), height=18, classes="mt-2",
                                   id="nr-progress"):
                html.Span("{{ progress_message }} {{ progress }} %", classes="text-caption")
            html.Div("{{ info }}", classes="text-caption mt-2", id="nr-info")
            with html.Div(classes="mt-2 d-flex flex-column ga-1"):
                for key, label, mime, icon in DOWNLOADS:
                    v.VBtn(label, prepend_icon=icon, variant="tonal", density="compact",
                           id=f"nr-download-{key}",
                           disabled=("!has_run || busy" + (" || !has_table" if key == "table" else ""),),
                           click=f"trigger('download_{key}').then((data) => data && "
                                 f"utils.download(download_names.{key}, data, '{mime}'))")


def _results(v, html) -> None:
    with html.Div(style="flex: 1 1 32%; display: flex; min-height: 220px; overflow: hidden;",
                  classes="pa-2 ga-2", id="nr-results"):
        with html.Div(style="flex: 3; overflow: auto;"):
            html.Div("{{ summary }}", classes="text-body-2 mb-1", id="nr-summary",
                     style="white-space: pre-line;")
            v.VDataTable(items=("table_rows",), headers=("table_headers",), density="compact",
                         items_per_page=8, id="nr-table", hover=True)
        with html.Div(style="flex: 2; overflow: auto;"):
            html.Img(v_if="chart_src", src=("chart_src",), style="max-width: 100%;", id="nr-chart",
                     alt="Relevance density of the top regions")
