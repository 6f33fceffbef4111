"""Keep other web pages out: same-origin and host checks on every request to the viewer.

Binding to 127.0.0.1 keeps other machines out, not other web pages: any site open in the user's
browser may open a WebSocket to ``ws://127.0.0.1:<port>`` (browsers do not apply CORS to
WebSockets) and trame's default secret is public. Browsers always send ``Origin`` on a WebSocket
handshake and on cross-site requests, and a page cannot forge it, so the viewer refuses requests
whose ``Origin`` is not the viewer itself. The ``Host`` check refuses DNS-rebinding names (a
foreign host name resolving to 127.0.0.1) while serving on loopback.
"""
from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def host_name(netloc: str) -> str:
    """``"127.0.0.1:8080"`` -> ``"127.0.0.1"``, ``"[::1]:80"`` -> ``"::1"`` (lower case)."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def machine_names(bound_host: str) -> set[str]:
    """Host names that may reach a server bound to ``bound_host`` (besides IP literals)."""
    import socket

    names = set(LOOPBACK_NAMES) | {bound_host.lower()}
    if bound_host not in LOOPBACK_NAMES:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return names


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def refusal(host: str, origin: str | None, bound_host: str, names: set[str] | None = None) -> str:
    """Why a request must be refused ('' when it may pass).

    ``host`` is the request's Host header, ``origin`` its Origin header (None when absent, as
    for a plain page load typed into the address bar), ``bound_host`` the address the server
    listens on. The Host must be a name of this machine (``names``, default
    :func:`machine_names`) or, when serving beyond loopback, an IP address: a foreign name that
    resolves here is DNS rebinding.
    """
    names = machine_names(bound_host) if names is None else names
    hostname = host_name(host)
    loopback = bound_host in LOOPBACK_NAMES
    if hostname not in names and (loopback or not _is_ip(hostname)):
        return f"host {host!r} is not a name of this machine"
    if origin is None:
        return ""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return f"requests from {origin!r} are not allowed (only from the viewer's own page)"
    return ""


#: what a page load without the server's secret gets (a reload loses it: trame strips it from the address)
NO_SECRET_PAGE = ("<!doctype html><title>NeuroRelevance Web</title><body style='font-family:sans-serif'>"
                  "<h3>NeuroRelevance Web needs its key</h3><p>Open the address that <code>neurorelevance "
                  "web</code> printed when it started: it ends in <code>?secret=...</code>. (Reloading the "
                  "page drops the key from the address; open the printed address again.)</p>")
PAGES = ("/", "/index.html")


def install(wslink_server, bound_host: str, secret: str | None = None) -> None:
    """Add the checks to the aiohttp application of trame's wslink server (before it starts).

    With ``secret``, a load of the page itself without ``?secret=<secret>`` gets a page that says
    where to find the address (the WebSocket refuses such a page anyway).
    """
    import hmac

    from aiohttp import web

    names = machine_names(bound_host)

    @web.middleware
    async def same_origin_only(request, handler):
        reason = refusal(request.host, request.headers.get("Origin"), bound_host, names)
        if reason:
            return web.Response(status=403, text=f"NeuroRelevance Web refused this request: {reason}.")
        if secret is not None and request.method == "GET" and request.path in PAGES:
            given = request.query.get("secret", "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return web.Response(status=403, text=NO_SECRET_PAGE, content_type="text/html")
        return await handler(request)

    wslink_server.app.middlewares.append(same_origin_only)
