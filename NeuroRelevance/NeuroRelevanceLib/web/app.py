"""The trame-slicer application: state, controllers and the run loop around :class:`WebSession`.

Slice views are trame-slicer's remote-rendered MRML views (the same displayable managers and
foreground/background layers as 3D Slicer); the heatmap is put in the foreground by the
library's ``show_heatmap``, so the colours and window are those of the Slicer module.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from .. import panel
from ..errors import InputError
from .defaults import DISPLAY_KEYS, PAGE_SETTINGS, RUN_KEYS
from .files import FileGate
from .layouts import COMPARE_LAYOUT, DEFAULT_LAYOUT
from .limits import ServerLimits
from .session import BUNDLED, WebSession

log = logging.getLogger(__name__)

DEMO_MODEL = BUNDLED + "ad_cnn"


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
        from trame_slicer.core import SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        from .grid import no_gutter
        from .navigation import Navigator

        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server, slice_view_ui_f=no_gutter)
        self.limits = limits or ServerLimits()
        self.session = WebSession(self.slicer.scene, FileGate(roots, max_upload=self.limits.max_upload))
        self.navigator = Navigator(self.server, self.slicer, self.session)
        self.upload_token = secrets.token_urlsafe(32)  # only pages that said hello read the state
        self.job = None
        self.atlases = (panel.NO_ATLAS, *panel.installed_atlases())  # the page cannot extend these
        self.model_items = WebSession.bundled_models()                # nor these
        self._task: asyncio.Task[None] | None = None  # the running run's task (kept referenced)
        self._shown: tuple | None = None  # display settings the current overlay was drawn with
        self._event: tuple[str, object] = ("", None)  # how the last Run ended when it did not finish
        self._set_defaults(autorun)
        self._bind()
        from .ui import build_ui

        self.ui = build_ui(self)
        self._guard(self._select_model, DEMO_MODEL, where="inputs")  # the selector shows it
        if demo:
            self._guard(self._load_demo, where="inputs")
        if demo and autorun:
            self.ctrl.on_server_ready.add(lambda **_: self.start_run())
        self.ctrl.on_server_ready.add(lambda **_: setattr(
            self, "_watcher", asyncio.ensure_future(self._keep_views_fitted())))

    async def _keep_views_fitted(self, period: float = 0.3) -> None:
        """Fit the slices whenever the page resized its views (first load, layout or window change).

        The views are created at a default size before the browser reports theirs; a fit at
        that size would crop the scan. Sizes are watched and, once stable, the views refitted,
        each on the slice it shows.
        """
        last, pending = None, False
        aids = self.navigator.aids
        while True:
            await asyncio.sleep(period)
            slots = [slot for slot, view in aids.views.items() if not view.is_render_blocked]
            sizes = tuple(tuple(aids.views[slot].render_window().GetSize()) for slot in slots)
            if sizes != last:
                last, pending = sizes, True
            elif pending:
                pending = False
                with self.state:
                    aids.refit(slots)

    # ---- state ------------------------------------------------------------------------
    def _set_defaults(self, autorun: bool) -> None:
        from .defaults import page_defaults

        self.state.trame__title = "NeuroRelevance"
        self.state.update(page_defaults(self, autorun))

    def values(self) -> dict:
        """The panel's values, checked, in the form ``panel.run_settings`` takes."""
        from .values import page_values

        return page_values(self.state, atlases=self.atlases, targets=self.session.targets())

    def _guard(self, action, *args, idle: bool = False, where: str = "run") -> bool:
        """Run ``action``; a user error becomes the page's error message beside the control that
        caused it (``where``: inputs, run, display, save), and the session lives on.

        ``idle``: refuse while a run is in progress (inputs and model must not change under it).
        """
        try:
            if idle and self.job is not None:
                raise InputError("A run is in progress: wait for it or Cancel it first.")
            action(*args)
        except ValueError as exc:  # InputError and the library's own argument checks
            self.state.update(dict(error=str(exc), error_where=where))
            return False
        except Exception as exc:  # unexpected: report it in the page and the server log
            log.exception("web viewer action failed")
            self.state.update(dict(error=f"{type(exc).__name__}: {exc}", error_where=where))
            return False
        self.state.error = ""
        return True

    # ---- bindings -----------------------------------------------------------------------
    def _bind(self) -> None:
        s, ctrl = self.state, self.ctrl
        ctrl.load_demo = lambda: self._guard(self._load_demo, idle=True, where="inputs")
        # the typed text comes with the click (a state update sent just before may still be on its way)
        ctrl.load_server_file = lambda path=None: self._guard(
            self._load_server_file, s.server_path if path is None else path, idle=True, where="inputs")
        ctrl.load_model_path = lambda path=None: self._guard(
            self._select_model, s.model_path if path is None else path, idle=True, where="inputs")
        ctrl.run = self.start_run
        ctrl.cancel = self.cancel
        ctrl.pin = lambda: self._guard(self._pin, idle=True)
        ctrl.unpin = lambda: self._guard(self._unpin, idle=True)
        ctrl.reset_views = lambda: self.slicer.display_manager.reset_views()
        ctrl.dismiss_error = lambda: s.update(dict(error=""))
        self.server.trigger("nr_jump")(
            lambda label=None: self._guard(self.navigator.jump_to_region, label, where="results"))
        for name, build in (("download_heatmap", self.session.download_heatmap),
                            ("download_displayed", self.session.download_displayed),
                            ("download_table", self.session.download_table),
                            ("download_scene", self.session.download_scene)):
            self.server.trigger(name)(self._download_trigger(build))

        @s.change("model_choice")
        def _on_model(model_choice=None, **_):
            if model_choice == self.session.model_choice or model_choice == "path":
                return  # already loaded (or the revert below), or a path to type
            if not self._guard(self._select_bundled, model_choice, idle=True, where="inputs"):
                s.model_choice = self.session.model_choice  # show what is loaded; keep the message

        @s.change("preset")
        def _on_preset(preset=None, **_):
            if isinstance(preset, str) and preset in panel.PRESET_ALPHA:
                s.alpha = panel.PRESET_ALPHA[preset]

        @s.change(*RUN_KEYS)
        def _on_settings(**_):
            self._update_summary(settings_changed=True)

        @s.change(*DISPLAY_KEYS)
        def _on_display(**_):
            if self.job is None and self.session.run is not None:
                self._refilter()

    def _refilter(self) -> None:
        """Show the current run with the page's display settings (from the cache)."""
        if self._guard(lambda: self.session.refilter(self.values()), where="display"):
            self.state.overlay_updates += 1
            self._shown = self._display_values()
            self._show_views()
            self.state.caption = "\n".join(self.session.caption())

    def _display_values(self) -> tuple:
        s = self.state
        return (s.filter_type, tuple(s.filter_range or ()), s.opacity, s.threshold, s.positive_only)

    def _update_summary(self, settings_changed: bool = False) -> None:
        """The text beside Run: the shown run, marked when the controls no longer match it.

        ``settings_changed``: valid settings again also retire Run's last error message (it was
        about the settings; how the last run ended stays in the text)."""
        try:
            values = self.values()
        except ValueError:
            values = None  # a half-typed number: the run's own text without the comparison
        if settings_changed and values is not None and self.state.error_where == "run" and self.job is None:
            self.state.error = ""
        self.state.summary = self.session.results_text(values, *self._event)

    def _download_trigger(self, build):
        def trigger():
            try:
                if self.job is not None:
                    raise InputError("A run is in progress: download when it has finished.")
                item = build()
            except Exception as exc:
                if not isinstance(exc, ValueError):
                    log.exception("download failed")
                self.state.update(dict(error=str(exc), error_where="save"))
                self.state.flush()
                return None  # the page saves nothing (see ui.DOWNLOADS)
            return self.server.protocol.addAttachment(item.content)
        return trigger

    # ---- actions ------------------------------------------------------------------------
    def _load_demo(self) -> None:
        self._show_input(self.session.load_demo(self.state.demo_diagnosis, self.state.demo_age))

    def _load_server_file(self, path) -> None:
        self._show_input(self.session.load_server_file(path))

    def load_received(self, receiver) -> bool:
        """Load an upload received over HTTP (see :mod:`.uploads`); False with the page's error set."""
        return self._guard(lambda: self._show_input(self.session.load_received(receiver)), idle=True,
                           where="inputs")

    def _show_input(self, scan) -> None:
        self._clear_results()
        self.navigator.set_layout(self.state.layout if self.state.layout != COMPARE_LAYOUT else DEFAULT_LAYOUT)
        self._show_views()
        self.slicer.display_manager.reset_views()
        self.state.input_name = scan.GetName()
        self.state.info = f"Loaded {scan.GetName()}."

    def _show_views(self) -> None:
        self.navigator.show(float(self.state.opacity))
        self.state.pinned_summary = self.navigator.state.view_captions.get("Compare", "")

    def _select_bundled(self, choice) -> None:
        """A choice from the model selector: one of the bundled cards it lists."""
        from .values import choice as checked

        self._select_model(checked(choice, "Model", [item["value"] for item in self.model_items]))

    def _select_model(self, choice: str) -> None:
        loaded = self.session.select_model(choice)
        card = loaded.card
        self.state.update(dict(model_info=f"{panel.card_summary(card)} · {loaded.summary()}",
                               model_details=panel.recommendation_details(card),
                               model_use=panel.intended_use_text(card),
                               target_items=self.session.targets(), target=panel.PREDICTED,
                               preset=card.recommended_preset))
        self._update_summary()

    def _pin(self) -> None:
        self.session.pin()
        self.navigator.set_layout(COMPARE_LAYOUT)
        self._show_views()

    def _unpin(self) -> None:
        self.session.unpin()
        if self.state.layout == COMPARE_LAYOUT:
            self.navigator.set_layout(DEFAULT_LAYOUT)
        self._show_views()

    def _clear_results(self) -> None:
        self._event = ("", None)
        self.state.update(dict(has_run=False, has_table=False, summary="", table_rows=[], chart_rows=[],
                               chart_caption="", caption="", pinned_summary=""))

    def _show_results(self) -> None:
        session = self.session
        self.state.update(dict(
            has_run=True, has_table=session.run is not None and session.run.table is not None,
            table_rows=session.table_rows(),
            chart_rows=session.chart_rows(), chart_caption=session.chart_caption(),
            caption="\n".join(session.caption()), download_names=session.file_names()))
        self._show_views()

    def start_run(self, shown: dict | None = None) -> None:
        """Start a run in the background and return at once.

        ``shown``: the settings as the page showed them when Run was clicked (a change made just
        before the click may still be on its way as a state update); they are checked like any
        state. (Returning the task would make trame wait for it before it handles the page's next
        event, so Cancel would only arrive after the run.)
        """
        if isinstance(shown, dict) and self.job is None:
            self.state.update({k: v for k, v in shown.items() if k in PAGE_SETTINGS})
        self._task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        """Prepare on the server loop, compute on a worker thread, apply back on the loop."""
        from ..background import BackgroundRun
        from ..jobs import Cancelled

        s = self.state
        if self.job is not None:
            return
        with s:
            try:
                job = self.session.prepare(self.values())
            except ValueError as exc:
                s.error, s.error_where = str(exc), "run"
                return
            except Exception as exc:
                log.exception("could not start a run")
                s.error, s.error_where = f"Could not start the run: {type(exc).__name__}: {exc}", "run"
                return
            self.job, s.busy, s.error, s.progress = job, True, "", 0
            s.runs_started = self.session.runs_started
            self._shown = self._display_values()  # apply() shows the run with these
        handle = BackgroundRun(job).start()  # compute on a worker thread
        while not handle.done:
            with s:
                message, fraction = handle.progress
                s.progress, s.progress_message = int(100 * fraction), message
            await asyncio.get_running_loop().run_in_executor(None, handle.wait, 0.2)
        with s:
            self._event = ("", None)
            try:
                handle.result()
                self.session.finish(job)
                self._show_results()
                s.info = "Done."
            except Cancelled as exc:
                s.info = str(exc) or "Cancelled."
                self._event = ("cancelled", None)
            except ValueError as exc:
                s.error, s.error_where = str(exc), "run"
                self._event = ("failed", exc)
            except Exception as exc:
                log.exception("relevance run failed")
                s.error, s.error_where = f"The relevance run failed: {type(exc).__name__}: {exc}", "run"
                self._event = ("failed", s.error)
            finally:
                self.job, s.busy, s.progress = None, False, 0
            if self.session.run is not None and self._display_values() != self._shown:
                self._refilter()  # display settings moved during the run (or it was cancelled)
            self._update_summary()

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
