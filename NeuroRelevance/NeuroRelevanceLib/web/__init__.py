"""NeuroRelevance Web: the module's workflow in a browser, on trame-slicer's MRML views.

``neurorelevance web [--port N] [--host 127.0.0.1] [--data DIR ...]`` serves one page: the
Slicer module's sections (inputs, method, target, filter and α range, display, atlas, Run with
progress and Cancel, downloads) beside real MRML slice views. All work goes through
:class:`logic.RelevanceLogic`; this package only binds it to the page.

- :mod:`.files`    which server files may be read; upload checks
- :mod:`.session`  inputs, model, runs, downloads of one scene (no web framework)
- :mod:`.app`      the trame application (state, controllers, the run loop)
- :mod:`.ui`       the page layout; :mod:`.layouts` the slice-view layouts
"""
from __future__ import annotations

__all__ = ["register", "serve"]


def register(subparsers):
    """Add the ``web`` sub-command to the ``neurorelevance`` command line."""
    p = subparsers.add_parser("web", help="explore relevance maps in a browser (trame-slicer)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--data", nargs="+", default=None, metavar="DIR",
                   help="folders whose files the page may open (default: the current folder)")
    p.add_argument("--no-demo", action="store_true", help="start empty instead of on the demo subject")
    p.add_argument("--no-autorun", action="store_true",
                   help="load the demo subject but wait for Run")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=_web)
    return p


def serve(*, port: int = 8080, host: str = "127.0.0.1", data=None, demo: bool = True,
          autorun: bool = True, open_browser: bool = False) -> None:
    """Start the viewer and serve until interrupted (blocking)."""
    import sys
    from pathlib import Path

    from .app import RelevanceWebApp
    from .files import FileGate

    roots = data or [Path.cwd()]
    FileGate(roots)  # a missing folder is refused before anything heavy starts
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: anyone who can reach this address can run models and "
              "read the --data folders. There is no login.", file=sys.stderr)
    app = RelevanceWebApp(roots=roots, demo=demo, autorun=autorun)
    app.start(port=port, host=host, open_browser=open_browser)


def _web(args) -> int:
    serve(port=args.port, host=args.host, data=args.data, demo=not args.no_demo,
          autorun=not args.no_autorun, open_browser=args.open)
    return 0
