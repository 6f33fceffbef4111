"""The trame-slicer application: state, controllers and the run loop around :class:`WebSession`.

Slice views are trame-slicer's remote-rendered MRML views (the same displayable managers and
foreground/background layers as 3D Slicer); the heatmap is put in the foreground by the
library's ``show_heatmap``, so the colours and window are those of the Slicer module.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
from pathlib import Path
from typing import Iterable

from .. import panel
from ..errors import InputError
from .files import FileGate
from .limits import ServerLimits
from .session import BUNDLED, WebSession

log = logging.getLogger(__name__)

DEMO_MODEL = BUNDLED + "ad_cnn"
#: state names that only change the display: handled from the cache, never by a new run
DISPLAY_KEYS = ("filter_type", "filter_range", "opacity", "threshold", "positive_only")


def prepare_rendering() -> None:
    """Offscreen OpenGL (OSMesa) unless the user chose a window type; call before vtk renders."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")



def trame_argv(program: str, secret: str) -> list[str]:
    """The ``sys.argv`` trame parses at start: only the secret, joined to its option.

    ``--authKey=<secret>`` in one word, because a random secret may begin with ``-`` and argparse
    would take ``--authKey -abc`` for a missing value and stop the server.
    """
    return [program, f"--authKey={secret}"]

class RelevanceWebApp:
    """One trame server showing one scene: the module's panel on the left, slice views right."""

    def __init__(self, server=None, *, roots: Iterable[str | Path] = (".",), autorun: bool = True,
                 demo: bool = True, limits: ServerLimits | None = None) -> None:
        prepare_rendering()
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        from .layouts import DEFAULT_LAYOUT, layouts

        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server)
        self.layouts = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.layouts.register_layout_dict(layouts(), lazy_initialization=True)
        self.layouts.set_layout(DEFAULT_LAYOUT)
        self.limits = limits or ServerLimits()
        self.session = WebSession(self.slicer.scene, FileGate(roots, max_upload=self.limits.max_upload))
        self.upload_token = secrets.token_urlsafe(32)  # only pages that said hello read the state
        self.job = None
        self.atlases = (panel.NO_ATLAS, *panel.installed_atlases())  # the page cannot extend these
        self.model_items = WebSession.bundled_models()                # nor these
        self._task = None     # the running run's task (kept referenced)
        self._shown = None    # display settings the current overlay was drawn with
        self._set_defaults(autorun)
        self._bind()
        from .ui import build_ui

        self.ui = build_ui(self)
        self._guard(self._select_model, DEMO_MODEL)  # the selector shows it: load it, demo or not
        if demo:
            self._guard(self._load_demo)
        if demo and autorun:
            self.ctrl.on_server_ready.add(lambda **_: self.start_run())
        self.ctrl.on_server_ready.add(lambda **_: setattr(
            self, "_watcher", asyncio.ensure_future(self._keep_views_fitted())))

    async def _keep_views_fitted(self, period: float = 0.3) -> None:
        """Fit the slices whenever the page resized its views (first load, layout or window change).

        The views are created at a default size before the browser reports theirs; a fit at
        that size would crop the scan. Sizes are watched and, once stable, the views refitted.
        """
        last, pending = None, False
        while True:
            await asyncio.sleep(period)
            views = self.slicer.view_manager.filter_visible_views(
                self.slicer.view_manager.get_slice_views())
            sizes = tuple(tuple(view.render_window().GetSize()) for view in views)
            if sizes != last:
                last, pending = sizes, True
            elif pending:
                pending = False
                with self.state:
                    self.slicer.display_manager.reset_views()

    # ---- state ------------------------------------------------------------------------
    def _set_defaults(self, autorun: bool) -> None:
        from ..demo_run import DEMO_ATLAS, DEMO_SETTINGS

        s = self.state
        s.trame__title = "NeuroRelevance"
        s.update(dict(
            input_kind="demo", demo_diagnosis="AD", demo_age=78, server_path="",
            model_items=self.model_items, model_choice=DEMO_MODEL, model_path="",
            model_info="", method_items=panel.METHODS, method="lrp", preset_items=panel.PRESETS,
            preset="epsilon-plus", epsilon=1e-6, gamma=0.25, alpha=1.0,
            target_items=[panel.PREDICTED], target=panel.PREDICTED,
            filter_items=panel.FILTERS, filter_type="none", filter_range=[0.0, 1.0],
            placement_items=panel.PLACEMENTS, filter_placement="input",
            opacity=DEMO_SETTINGS["opacity"], threshold=DEMO_SETTINGS["threshold"],
            positive_only=False, atlas_items=list(self.atlases),
            atlas=DEMO_ATLAS, min_overlap=DEMO_SETTINGS["min_overlap"],
            busy=False, progress=0, progress_message="", error="", info="", summary="",
            input_name="", has_run=False, has_table=False, runs_started=0, overlay_updates=0,
            table_rows=[], table_headers=_table_headers(), chart_src="", autorun=autorun,
            download_names=self.session.file_names(), upload_token=self.upload_token,
            roots=self.session.gate.describe()))

    def values(self) -> dict:
        """The panel's values, checked, in the form ``panel.run_settings`` takes."""
        from .values import page_values

        return page_values(self.state, atlases=self.atlases, targets=self.session.targets())

    def _guard(self, action, *args, idle: bool = False) -> bool:
        """Run ``action``; a user error becomes the page's error message, the session lives on.

        ``idle``: refuse while a run is in progress (inputs and model must not change under it).
        """
        try:
            if idle and self.job is not None:
                raise InputError("A run is in progress: wait for it or Cancel it first.")
            action(*args)
        except ValueError as exc:  # InputError and the library's own argument checks
            self.state.error = str(exc)
            return False
        except Exception as exc:  # unexpected: report it in the page and the server log
            log.exception("web viewer action failed")
            self.state.error = f"{type(exc).__name__}: {exc}"
            return False
        self.state.error = ""
        return True

    # ---- bindings -----------------------------------------------------------------------
    def _bind(self) -> None:
        s, ctrl = self.state, self.ctrl
        ctrl.load_demo = lambda: self._guard(self._load_demo, idle=True)
        ctrl.load_server_file = lambda: self._guard(self._load_server_file, idle=True)
        ctrl.load_model_path = lambda: self._guard(self._select_model, s.model_path, idle=True)
        ctrl.run = self.start_run
        ctrl.cancel = self.cancel
        ctrl.reset_views = lambda: self.slicer.display_manager.reset_views()
        ctrl.dismiss_error = lambda: s.update(dict(error=""))
        for name, build in (("download_heatmap", self.session.download_heatmap),
                            ("download_table", self.session.download_table),
                            ("download_scene", self.session.download_scene)):
            self.server.trigger(name)(self._download_trigger(build))

        @s.change("model_choice")
        def _on_model(model_choice=None, **_):
            if model_choice == self.session.model_choice or model_choice == "path":
                return  # already loaded (or the revert below), or a path to type
            if not self._guard(self._select_bundled, model_choice, idle=True):
                s.model_choice = self.session.model_choice  # show what is loaded; keep the message

        @s.change("preset")
        def _on_preset(preset=None, **_):
            if isinstance(preset, str) and preset in panel.PRESET_ALPHA:
                s.alpha = panel.PRESET_ALPHA[preset]

        @s.change("layout")
        def _on_layout(layout=None, **_):
            from .layouts import layouts
            from .values import choice

            if layout:
                self._guard(lambda: self.layouts.set_layout(choice(layout, "Layout", list(layouts()))))

        @s.change(*DISPLAY_KEYS)
        def _on_display(**_):
            if self.job is None and self.session.run is not None:
                self._refilter()

    def _refilter(self) -> None:
        """Show the current run with the page's display settings (from the cache)."""
        if self._guard(lambda: self.session.refilter(self.values())):
            self.state.overlay_updates += 1
            self._shown = self._display_values()

    def _display_values(self) -> tuple:
        s = self.state
        return (s.filter_type, tuple(s.filter_range or ()), s.opacity, s.threshold, s.positive_only)

    def _download_trigger(self, build):
        def trigger():
            try:
                if self.job is not None:
                    raise InputError("A run is in progress: download when it has finished.")
                item = build()
            except Exception as exc:
                if not isinstance(exc, ValueError):
                    log.exception("download failed")
                self.state.error = str(exc)
                self.state.flush()
                return None  # the page saves nothing (see ui.DOWNLOADS)
            return self.server.protocol.addAttachment(item.content)
        return trigger

    # ---- actions ------------------------------------------------------------------------
    def _load_demo(self) -> None:
        self._show_input(self.session.load_demo(self.state.demo_diagnosis, self.state.demo_age))

    def _load_server_file(self) -> None:
        self._show_input(self.session.load_server_file(self.state.server_path))

    def load_received(self, receiver) -> bool:
        """Load an upload received over HTTP (see :mod:`.uploads`); False with the page's error set."""
        return self._guard(lambda: self._show_input(self.session.load_received(receiver)), idle=True)

    def _show_input(self, scan) -> None:
        display = self.slicer.display_manager
        display.show_volume_in_slice_background(scan)
        display.show_volume_in_slice_foreground(None)
        display.reset_views()
        self._clear_results()
        self.state.input_name = scan.GetName()
        self.state.info = f"Loaded {scan.GetName()}."

    def _select_bundled(self, choice) -> None:
        """A choice from the model selector: one of the bundled cards it lists."""
        from .values import choice as checked

        self._select_model(checked(choice, "Model", [item["value"] for item in self.model_items]))

    def _select_model(self, choice: str) -> None:
        loaded = self.session.select_model(choice)
        card = loaded.card
        self.state.update(dict(model_info=f"{panel.card_summary(card)} · {loaded.summary()}",
                               target_items=self.session.targets(), target=panel.PREDICTED,
                               preset=card.recommended_preset))

    def _clear_results(self) -> None:
        self.state.update(dict(has_run=False, has_table=False, summary="", table_rows=[], chart_src=""))

    def _show_results(self) -> None:
        session = self.session
        png = session.chart_png()
        self.state.update(dict(
            has_run=True, has_table=session.run.table is not None, summary=session.summary(),
            table_rows=session.table_rows(),
            chart_src="data:image/png;base64," + base64.b64encode(png).decode() if png else "",
            download_names=session.file_names()))

    def start_run(self) -> None:
        """Start a run in the background and return at once.

        (Returning the task would make trame wait for it before it handles the page's next
        event, so Cancel would only arrive after the run.)
        """
        self._task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        """Prepare on the server loop, compute on a worker thread, apply back on the loop."""
        from ..jobs import Cancelled, compute

        s = self.state
        if self.job is not None:
            return
        with s:
            try:
                job = self.session.prepare(self.values())
            except ValueError as exc:
                s.error = str(exc)
                return
            except Exception as exc:
                log.exception("could not start a run")
                s.error = f"Could not start the run: {type(exc).__name__}: {exc}"
                return
            self.job, s.busy, s.error, s.progress = job, True, "", 0
            s.runs_started = self.session.runs_started
            self._shown = self._display_values()  # apply() shows the run with these
        progress = {"message": "Starting", "fraction": 0.0}

        def report(message: str, fraction: float) -> None:  # called on the worker thread
            progress.update(message=message, fraction=fraction)

        future = asyncio.get_running_loop().run_in_executor(None, compute, job, report)
        while not future.done():
            with s:
                s.progress, s.progress_message = int(100 * progress["fraction"]), progress["message"]
            await asyncio.wait([future], timeout=0.2)
        with s:
            try:
                future.result()
                self.session.finish(job)
                self._show_results()
                s.info = "Done."
            except Cancelled as exc:
                s.info = str(exc) or "Cancelled."
            except ValueError as exc:
                s.error = str(exc)
            except Exception as exc:
                log.exception("relevance run failed")
                s.error = f"The relevance run failed: {type(exc).__name__}: {exc}"
            finally:
                self.job, s.busy, s.progress = None, False, 0
            if self.session.run is not None and self._display_values() != self._shown:
                self._refilter()  # display settings moved during the run (or it was cancelled)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.state.info = "Cancelling after the current step..."

    def start(self, *, port: int = 8080, host: str = "127.0.0.1", open_browser: bool = False) -> None:
        """Serve until interrupted (blocking), with this server's own secret and its limits.

        The secret is random per start; the page's address carries it (``?secret=...``), printed
        here and opened with ``open_browser``. trame's public default secret is never accepted.
        """
        import sys

        from . import guard, limits, uploads

        secret = secrets.token_urlsafe(32)
        self.server.options["ws_max_msg_size"] = self.limits.max_frame

        def bind(wslink_server) -> None:
            guard.install(wslink_server, host, secret)
            limits.install(wslink_server, self.limits)
            uploads.install(wslink_server, self)

        self.ctrl.on_server_bind.add(bind)
        self.ctrl.on_server_ready.add(lambda **_: self._announce(host, secret, open_browser))
        # trame reads its options from sys.argv: give it the secret, keep our CLI's arguments away
        argv, sys.argv = sys.argv, trame_argv(sys.argv[0], secret)
        try:
            self.server.start(port=port, host=host, open_browser=False, timeout=0,
                              show_connection_info=False)
        finally:
            sys.argv = argv
            self.session.close()

    def _announce(self, host: str, secret: str, open_browser: bool) -> None:
        """Print the page's address (with the secret) and open it if asked."""
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{self.server.port}/?secret={secret}"
        print(f"\nNeuroRelevance Web is running. Open this address (it holds the key to this server; "
              f"keep it to yourself):\n    {url}\n", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)


def _table_headers() -> list[dict]:
    titles = {"rank": "#", "name": "Region", "voxels": "Voxels", "density": "Density",
              "fraction_pos": "Share of R⁺", "sum_pos": "ΣR⁺", "sum_neg": "ΣR⁻"}
    from .session import TABLE_COLUMNS

    return [{"title": titles[c], "key": c} for c in TABLE_COLUMNS]
