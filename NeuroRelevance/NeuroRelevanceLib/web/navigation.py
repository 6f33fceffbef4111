"""The page's side of the views: layout, values under the cursor, crosshair, window/level, jumps.

:class:`Navigator` binds :class:`.views.ViewAids` (Slicer's crosshair, window/level widget,
legend, annotations) to trame's state: what the views do is Slicer's; what the page shows of it
(the value line, the positions, the scan's window and level fields) is kept in step here.
"""
from __future__ import annotations

import logging

from ..errors import InputError
from . import layouts, reading
from .views import SLOTS, ViewAids

log = logging.getLogger(__name__)


class Navigator:
    """Keeps the page's navigation state and the slice views in step."""

    def __init__(self, server, slicer_app, session) -> None:
        self.server, self.state, self.session = server, server.state, session
        self.aids = ViewAids(slicer_app)
        self.aids.on_slice = self._slice_moved
        self._scan_display = None
        self._scan_observer = None
        self._last_probe: tuple | None = None
        crosshair = self.aids.crosshair
        crosshair.AddObserver(crosshair.CursorPositionModifiedEvent, self._cursor_moved)
        crosshair.AddObserver("ModifiedEvent", self._crosshair_moved)
        self.state.update(dict(
            layout=layouts.DEFAULT_LAYOUT, layout_items=layouts.layout_names(),
            grid_styles=layouts.grid_styles(layouts.DEFAULT_LAYOUT, SLOTS),
            view_letters={slot: self.aids.letters(slot) for slot in SLOTS},
            view_positions={slot: self.aids.position(slot) for slot in SLOTS},
            view_captions={slot: "" for slot in SLOTS}, probe=None,
            probe_text=reading.probe_text(None), crosshair=None, crosshair_region="",
            scan_window=0.0, scan_level=0.0))
        self.aids.set_visible(layouts.slots_of(layouts.DEFAULT_LAYOUT))
        self.state.change("layout")(lambda layout=None, **_: self.set_layout(layout))
        self.state.change("scan_window", "scan_level")(self._window_typed)

    # ---- layout -------------------------------------------------------------------------------
    def set_layout(self, name) -> None:
        """Show layout ``name`` (one the page offers)."""
        from .values import choice

        name = choice(name, "Layout", layouts.layout_names())
        with self.state:
            self.state.layout = name
            self.state.grid_styles = layouts.grid_styles(name, SLOTS)
        self.aids.set_visible(layouts.slots_of(name), layouts.LEGEND_WIDTH[name])

    # ---- what the views show ------------------------------------------------------------------
    def show(self, opacity: float) -> None:
        """Put the session's scan, current run and pinned run into the views, with captions."""
        session = self.session
        run, pinned = session.run, session.pinned
        alive = [r if r is not None and r.node.GetScene() is not None else None for r in (run, pinned)]
        self.aids.show(session.scan, alive[0].node if alive[0] else None,
                       alive[1].node if alive[1] else None, opacity)
        captions = {}
        for slot in SLOTS:
            shown = alive[1] if slot == "Compare" else alive[0]
            text = _short_caption(shown) if shown is not None else ""
            if slot == "Compare" and text:
                text = "Pinned: " + text
            captions[slot] = text
            # in the views only when two runs are side by side (the caption below names the run)
            self.aids.set_caption(slot, _view_caption(shown) if alive[1] and slot in ("Red", "Compare") else "")
        self.state.view_captions = captions
        self.watch_scan(session.scan)

    def watch_scan(self, scan) -> None:
        """Follow the scan's window and level (a drag in a view changes them)."""
        display = scan.GetDisplayNode() if scan is not None else None
        if display is self._scan_display:
            return
        if self._scan_display is not None and self._scan_observer is not None:
            self._scan_display.RemoveObserver(self._scan_observer)
        self._scan_display, self._scan_observer = display, None
        if display is not None:
            self._scan_observer = display.AddObserver("ModifiedEvent", self._window_moved)
            self._window_moved(display, None)

    # ---- observers (Slicer -> page) -----------------------------------------------------------
    def _cursor_moved(self, *_) -> None:
        ras = self.aids.cursor()
        if ras is None:
            return
        try:
            values = self.session.probe(ras)
        except Exception:  # a value line must never break the views
            log.exception("probe failed")
            return
        key = (tuple(values["ijk"] or ()), values["relevance"], values["scan"])
        if key == self._last_probe:
            return
        self._last_probe = key
        with self.state:
            self.state.probe = values
            self.state.probe_text = reading.probe_text(values)

    def _crosshair_moved(self, *_) -> None:
        ras = [round(float(v), 3) for v in self.aids.crosshair.GetCrosshairRAS()]
        if ras == self.state.crosshair:
            return
        region = self.session.probe(ras).get("region", "")
        with self.state:
            self.state.crosshair = ras
            self.state.crosshair_region = region

    def _slice_moved(self, slot: str) -> None:
        positions = dict(self.state.view_positions or {})
        letters = dict(self.state.view_letters or {})
        position, letter = self.aids.position(slot), self.aids.letters(slot)
        if positions.get(slot) == position and letters.get(slot) == letter:
            return
        positions[slot], letters[slot] = position, letter
        with self.state:
            self.state.view_positions, self.state.view_letters = positions, letters

    def _window_moved(self, display, _event) -> None:
        window, level = round(display.GetWindow(), 4), round(display.GetLevel(), 4)
        if (window, level) != (self.state.scan_window, self.state.scan_level):
            with self.state:
                self.state.scan_window, self.state.scan_level = window, level

    # ---- page -> Slicer -------------------------------------------------------------------------
    def _window_typed(self, scan_window=None, scan_level=None, **_) -> None:
        display = self._scan_display
        if display is None:
            return
        from .values import number

        try:
            window = number(scan_window, "Window", 0.0, 1e9)
            level = number(scan_level, "Level", -1e9, 1e9)
        except InputError as exc:
            self.state.error, self.state.error_where = str(exc), "display"
            return
        if abs(window - display.GetWindow()) > 1e-6 or abs(level - display.GetLevel()) > 1e-6:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(window, level)

    def jump_to_region(self, label) -> None:
        """Take every view to a region of the table (a voxel of it nearest its centre)."""
        try:
            label = int(label)
        except (TypeError, ValueError):
            raise InputError(f"Region {label!r} is not a region label.") from None
        self.aids.jump(self.session.region_centre(label))


def _view_caption(run) -> str:
    """A few words to tell two runs apart inside their views: method and target."""
    record = run.record
    return f"{record['label']} · target {record['target']['label']}"


def _short_caption(run) -> str:
    """What a view shows, in one line: method and parameters, target, filter (and the display
    filter when one is applied from the cache)."""
    from ..mrml.display import VALUES_ATTRIBUTE
    from ..provenance import summary

    text = summary(run.record).split("; model ")[0]
    values = run.node.GetAttribute(VALUES_ATTRIBUTE) or ""
    return text + (f"; shown: {values.split(': ', 1)[1]}" if values.startswith("displayed") else "")
