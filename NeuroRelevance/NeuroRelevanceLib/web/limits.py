"""What one client may make the server hold: message sizes, unfinished messages, sessions.

trame speaks wslink over one WebSocket: a message is msgpack, cut into chunks whose 12-byte header
says the message's total size. wslink's own reassembly allocates that total as soon as the first
chunk arrives and, once a client said hello with the secret, allows 4 GiB: a 13-byte frame could
make the server allocate a gigabyte. :class:`BoundedUnChunker` replaces it: it refuses a declared
size above the limit *before* keeping anything, bounds how many unfinished messages (and how many
declared bytes) one connection may have, and stores only the bytes that actually arrived. A
connection that breaks a limit is closed (1009, message too big). aiohttp refuses a single frame
above ``max_frame`` before buffering it.

:func:`install` wires this into trame's wslink server, and adds a bound on simultaneous sessions
(WebSocket connections; more get 503) and a deadline for a new connection to authenticate.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from .files import MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)

MiB = 1 << 20
HEADER_LENGTH = 12  # wslink chunk header: message id, offset, total size (little-endian uint32 each)
WS_PATH = "/ws"     # trame's WebSocket route


@dataclass(frozen=True)
class ServerLimits:
    """The web server's limits (bytes, counts, seconds)."""

    max_message: int = 16 * MiB        # one whole message from a page (state changes, events)
    max_frame: int = 4 * MiB           # one WebSocket frame; the page cuts messages into chunks of this
    max_pending: int = 32 * MiB        # declared size of one connection's unfinished messages, together
    max_unfinished: int = 8            # unfinished messages of one connection
    max_sessions: int = 4              # simultaneous WebSocket connections (browser tabs)
    max_upload: int = MAX_UPLOAD_BYTES  # one uploaded scan (streamed to disk, never held in memory)
    hello_seconds: float = 15.0        # time a new connection has to authenticate

    def __post_init__(self) -> None:
        from ..errors import InputError

        for name in ("max_message", "max_frame", "max_pending", "max_unfinished", "max_sessions", "max_upload"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be a positive whole number, not {getattr(self, name)!r}.")
        if self.max_pending < self.max_message:
            raise InputError("max_pending must be at least max_message.")


class LimitExceeded(ValueError):
    """A client sent more than it may; its connection is closed."""


class BoundedUnChunker:
    """wslink's chunk reassembly (same wire format) with hard limits, allocating only what arrives.

    Before the client authenticated, a message may hold ``WSLINK_AUTH_MSG_SIZE`` bytes (wslink's
    own default: 512); wslink raises the limit after a good hello with
    :meth:`set_max_message_size`, which here never goes above ``limits.max_message``.
    """

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.max_message_size = min(int(os.environ.get("WSLINK_AUTH_MSG_SIZE", "512")), limits.max_message)
        self.pending: dict[int, tuple[int, bytearray]] = {}
        self.pending_declared = 0

    def set_max_message_size(self, size: int) -> None:
        self.max_message_size = min(int(size), self.limits.max_message)

    def release_pending_messages(self) -> None:
        self.pending.clear()
        self.pending_declared = 0

    def process_chunk(self, chunk: bytes):
        """Add one chunk; returns the decoded message once complete, else None."""
        import msgpack

        if len(chunk) < HEADER_LENGTH:
            raise LimitExceeded(f"a chunk of {len(chunk)} bytes is shorter than its header")
        message_id = int.from_bytes(chunk[0:4], "little")
        offset = int.from_bytes(chunk[4:8], "little")
        total = int.from_bytes(chunk[8:12], "little")
        content = chunk[HEADER_LENGTH:]
        entry = self.pending.get(message_id)
        if entry is None:
            if total > self.max_message_size:
                raise LimitExceeded(f"a message declared {total} bytes; the limit is {self.max_message_size}")
            if len(self.pending) >= self.limits.max_unfinished \
                    or self.pending_declared + total > self.limits.max_pending:
                raise LimitExceeded(f"more than {self.limits.max_unfinished} unfinished messages or "
                                    f"{self.limits.max_pending} declared bytes on one connection")
            entry = (total, bytearray())
            self.pending[message_id] = entry
            self.pending_declared += total
        declared, buffer = entry
        if total != declared or offset != len(buffer) or len(buffer) + len(content) > declared:
            self._drop(message_id)
            raise LimitExceeded(f"chunk at offset {offset} does not continue message {message_id} "
                                f"({len(buffer)} of {declared} bytes received)")
        buffer += content
        if len(buffer) < declared:
            return None
        self._drop(message_id)
        return msgpack.unpackb(buffer)

    def _drop(self, message_id: int) -> None:
        declared, _ = self.pending.pop(message_id, (0, None))
        self.pending_declared -= declared


def install(wslink_server, limits: ServerLimits) -> None:
    """Apply ``limits`` to trame's wslink aiohttp server (call from ``on_server_bind``)."""
    from aiohttp import web

    handlers = getattr(wslink_server, "_ws_handlers", None)
    if not handlers or not all(hasattr(h, "unchunkers") and hasattr(h, "connections") for h in handlers):
        raise RuntimeError("This wslink version is not supported: the web viewer will not serve without "
                           "its message limits (install the pinned wslink).")
    for handler in handlers:
        _bound(handler, limits)

    @web.middleware
    async def session_limit(request, handler):
        if request.path == WS_PATH:
            open_now = sum(len(h.connections) for h in handlers)
            if open_now >= limits.max_sessions:
                return web.Response(status=503, text=f"NeuroRelevance Web serves {limits.max_sessions} "
                                                     "sessions at a time; close another tab first.")
        return await handler(request)

    wslink_server.app.middlewares.append(session_limit)


def _bound(handler, limits: ServerLimits) -> None:
    """Give every new connection of ``handler`` a bounded unchunker and a deadline to authenticate."""
    from aiohttp import WSCloseCode

    connect, receive = handler.onConnect, handler.onMessage

    async def close(client_id: str, reason: str) -> None:
        ws = handler.connections.get(client_id)
        if ws is not None and not ws.closed:
            await ws.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=reason[:120].encode())

    async def on_connect(request, client_id):
        await connect(request, client_id)
        handler.unchunkers[client_id] = BoundedUnChunker(limits)

        async def deadline():
            await asyncio.sleep(limits.hello_seconds)
            if client_id in handler.connections and client_id not in handler.authentified_client_ids:
                ws = handler.connections.get(client_id)
                if ws is not None and not ws.closed:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no hello in time")

        handler._neurorelevance_deadlines = getattr(handler, "_neurorelevance_deadlines", set())
        task = asyncio.ensure_future(deadline())
        handler._neurorelevance_deadlines.add(task)
        task.add_done_callback(handler._neurorelevance_deadlines.discard)

    async def on_message(is_binary, msg, client_id):
        try:
            await receive(is_binary, msg, client_id)
        except LimitExceeded as exc:
            log.warning("closing a web connection that exceeded a limit: %s", exc)
            await close(client_id, str(exc))

    handler.onConnect, handler.onMessage = on_connect, on_message
