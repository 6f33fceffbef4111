"""The slice-view area: every view made once, placed by the chosen layout on a CSS grid.

Each slot holds a trame-slicer remote view (its server template) above a bar with the view's
slice slider (trame-slicer's, bound to the view) and its position in mm; below the grid, a line
with the values under the cursor and the caption of what the views show.
"""
from __future__ import annotations

from .views import SLOTS

SLOT_NAMES = {"Red": "Axial", "Green": "Coronal", "Yellow": "Sagittal", "Compare": "Axial · pinned run"}


def no_gutter(_server, _view_id, _view) -> None:
    """The views carry no overlay controls: their slider sits below them (see :func:`build_grid`)."""


def build_grid(app, html) -> None:
    """The view slots (styled by ``grid_styles``), the value line and the caption."""
    from trame.widgets import client
    from trame_slicer.app.logic.slice_view_logic import connect_slice_view_slider_to_state
    from trame_slicer.app.ui.slider import Slider

    views = app.navigator.aids.views
    with html.Div(style=("grid_styles.container",), id="nr-grid"):
        for slot in SLOTS:
            view = views[slot]
            with html.Div(style=(f"grid_styles.{slot}",), id=f"nr-view-slot-{slot}"), \
                    html.Div(style="display: flex; flex-direction: column; flex: 1; min-width: 0;"):
                with html.Div(style="flex: 1 1 0; display: flex; min-height: 0; overflow: hidden;",
                              id=f"nr-view-{slot}"):
                    client.ServerTemplate(name=app.server.translator.translate_key(view.get_singleton_tag()))
                with html.Div(classes="d-flex align-center px-2",
                              style="height: 26px; background: #181818; color: #ffd54a;"):
                    html.Span(SLOT_NAMES[slot], classes="text-caption mr-2", style="color: #bbb;")
                    Slider(typed_state=connect_slice_view_slider_to_state(app.server, view),
                           theme="dark", density="compact", classes="mx-2", color="#ffd54a",
                           id=f"nr-slider-{slot}")
                    html.Span(f"{{{{ view_positions.{slot} }}}}", classes="text-caption",
                              style="min-width: 72px; text-align: right;", id=f"nr-position-{slot}")


def build_readout(html) -> None:
    """The value line (cursor position, scan, relevance, region) and the caption of the views."""
    with html.Div(classes="px-3 py-1", id="nr-readout",  # fixed height: the views keep their size
                  style="background: #202020; color: #eee; font-size: 13px; flex: 0 0 132px; "
                        "overflow-y: auto;"):
        html.Div("{{ probe_text }}", id="nr-probe", style="font-family: monospace;")
        html.Div("{{ caption }}", id="nr-caption", classes="mt-1",
                 style="white-space: pre-line; font-size: 12px; color: #ccc; line-height: 1.35;")
