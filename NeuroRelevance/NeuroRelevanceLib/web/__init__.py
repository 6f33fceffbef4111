"""NeuroRelevance Web: the module's workflow in a browser, on trame-slicer's MRML views.

``neurorelevance web [--port N] [--host 127.0.0.1] [--data DIR ...]`` serves one page: the
Slicer module's sections (inputs, method, target, filter and its filter range, display, atlas, Run with
progress and Cancel, downloads) beside real MRML slice views that read alone (letters, slice positions,
colour bars, crosshair, values under the cursor, layouts, a pinned run side by side). All work goes
through :class:`logic.RelevanceLogic`; this package only binds it to the page.

- :mod:`.files`    which server files may be read; upload checks
- :mod:`.session`  inputs, model, runs, downloads of one scene (no web framework)
- :mod:`.app`      the trame application (state, controllers, the run loop, its secret)
- :mod:`.guard`    same-origin and host checks; :mod:`.limits` message, session limits;
  :mod:`.uploads`  uploads streamed to disk over HTTP
- :mod:`.reading`  table rows, chart bars, region centres, values at a point
- :mod:`.views`    Slicer's reading aids on the views; :mod:`.navigation` binds them to the page
- :mod:`.ui`       the page layout; :mod:`.grid` the views' grid; :mod:`.layouts` the layouts;
  :mod:`.defaults` the page's first state
"""
from __future__ import annotations

__all__ = ["register", "serve"]


def register(subparsers):
    """Add the ``web`` sub-command to the ``neurorelevance`` command line."""
    p = subparsers.add_parser("web", help="explore relevance maps in a browser (trame-slicer)")
    from ..cli_checks import number, port

    p.add_argument("--port", type=port, default=8080,
                   help="port to listen on, 1-65535, 0 for any free port (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--data", nargs="+", default=None, metavar="DIR",
                   help="folders whose files the page may open (default: the current folder)")
    p.add_argument("--no-demo", action="store_true", help="start empty instead of on the demo subject")
    p.add_argument("--no-autorun", action="store_true",
                   help="load the demo subject but wait for Run")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--max-upload-mb", type=number(1, 1 << 20, integer=True), default=512,
                   help="largest scan the page may upload, in MB (default: %(default)s)")
    p.add_argument("--max-sessions", type=number(1, 64, integer=True), default=4,
                   help="browser tabs served at the same time (default: %(default)s)")
    p.set_defaults(func=_web)
    return p


def serve(*, port: int = 8080, host: str = "127.0.0.1", data=None, demo: bool = True,
          autorun: bool = True, open_browser: bool = False, max_upload_mb: int = 512,
          max_sessions: int = 4) -> None:
    """Start the viewer and serve until interrupted (blocking).

    The server gets a random secret (in the printed address), refuses WebSocket messages over
    16 MB and frames that claim more before allocating, streams uploads of at most
    ``max_upload_mb`` to disk and serves ``max_sessions`` tabs at a time (see :mod:`.limits`).
    """
    import sys
    from pathlib import Path

    from .app import RelevanceWebApp
    from .files import FileGate
    from .limits import ServerLimits

    roots = data or [Path.cwd()]
    FileGate(roots)  # a missing folder is refused before anything heavy starts
    limits = ServerLimits(max_upload=int(max_upload_mb) << 20, max_sessions=int(max_sessions))
    check_address(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: anyone who can reach this address can run models and "
              "read the data folders it serves. There is no login.", file=sys.stderr)
    app = RelevanceWebApp(roots=roots, demo=demo, autorun=autorun, limits=limits)
    app.start(port=port, host=host, open_browser=open_browser)


def check_address(host: str, port: int) -> None:
    """Refuse a port out of range, an unknown host or a busy port before the viewer is built. The refusal names
    them as :func:`serve` takes them (``port=8080``); the command line shows its flags (``--port 8080``)."""
    import errno
    import socket

    from ..vocabulary import OptionError

    def named(option: str, value) -> tuple:
        return (option, value, f"--{option}")

    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OptionError(named("port", port), ": a port is a whole number from 1 to 65535 (0: any free port).")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise OptionError(named("host", host), f": not an address this machine can listen on ({exc}); use "
                          "127.0.0.1 (this machine only) or one of its network addresses.") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OptionError(named("port", port), f": the port is already in use on {host}; choose another "
                                  "(e.g. ", named("port", port + 1 if port < 65535 else 8080), ") or stop the "
                                  "program that uses it.") from None
            raise OptionError(named("host", host), " ", named("port", port), ": cannot listen there "
                              f"({exc.strerror or exc}); use 127.0.0.1 or one of this machine's addresses, and a "
                              "port above 1023.") from None


def _web(args) -> int:
    serve(port=args.port, host=args.host, data=args.data, demo=not args.no_demo,
          autorun=not args.no_autorun, open_browser=args.open, max_upload_mb=args.max_upload_mb,
          max_sessions=args.max_sessions)
    return 0
