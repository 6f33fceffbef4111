"""Talk to a running ``neurorelevance web`` at the wire level: WebSocket frames, wslink chunks, uploads.

The frames are built with wslink's own chunk format and msgpack (the protocol the trame page
speaks), so the server sees exactly what a browser or a hostile local process would send.
"""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import msgpack

#: trame's built-in secret, public in every trame install
DEFAULT_SECRET = "wslink-secret"
HEADER = 12  # wslink chunk header: message id, offset, total size (three little-endian uint32)


def chunk(message_id: int, offset: int, total: int, content: bytes = b"") -> bytes:
    """One wslink chunk: a 12-byte header followed by ``content``."""
    return (message_id.to_bytes(4, "little") + offset.to_bytes(4, "little")
            + total.to_bytes(4, "little") + content)


def packed(message: dict, message_id: int = 7) -> bytes:
    """A whole wslink message in one chunk."""
    body = msgpack.packb(message)
    return chunk(message_id, 0, len(body), body)


def hello(secret: str) -> bytes:
    return packed({"wslink": "1.0", "id": "system:c0:0", "method": "wslink.hello",
                   "args": [{"secret": secret}], "kwargs": {}})


def served_secret(log_path: Path) -> str:
    """The secret in the address the server printed (see web_browser.served_url)."""
    from urllib.parse import parse_qs, urlsplit

    from web_browser import served_url

    return parse_qs(urlsplit(served_url(log_path)).query)["secret"][0]


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def _decode(ws) -> dict | None:
    """The next complete message the server sent (None when the connection closed)."""
    import aiohttp
    from wslink.chunking import UnChunker

    unchunker = UnChunker()
    unchunker.set_max_message_size(1 << 30)
    while True:
        msg = await ws.receive(timeout=20)
        if msg.type != aiohttp.WSMsgType.BINARY:
            return None
        done = unchunker.process_chunk(msg.data)
        if done is not None:
            return done


async def session(port: int, secret: str, frames: list[bytes], during=None, settle: float = 2.5) -> dict:
    """Say hello with ``secret``, then send ``frames``; report what the server answered and did.

    For ``settle`` seconds afterwards (less if the server closes the connection) ``during()`` is
    sampled every 0.2 s (e.g. the server's memory); the largest sample is reported as ``"during"``.
    """
    import aiohttp

    url = f"http://127.0.0.1:{port}"
    report: dict = {"authenticated": False, "closed": False, "during": None}
    closing = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    async with aiohttp.ClientSession() as client, client.ws_connect(f"{url}/ws", origin=url, max_msg_size=0) as ws:
        await ws.send_bytes(hello(secret))
        answer = await _decode(ws)
        report["hello"] = answer
        report["authenticated"] = bool(answer and "result" in answer and "clientID" in answer["result"])
        for frame in frames:
            if ws.closed:
                break
            try:
                await ws.send_bytes(frame)
            except (ConnectionError, aiohttp.ClientError):  # the server hung up mid-frame
                report["closed"] = True
                break
        deadline = asyncio.get_running_loop().time() + settle
        samples = []
        while asyncio.get_running_loop().time() < deadline and not report["closed"]:
            if during is not None:
                samples.append(during())
            try:
                msg = await ws.receive(timeout=0.2)
                report["closed"] = msg.type in closing
            except asyncio.TimeoutError:
                report["closed"] = ws.closed
        if during is not None:
            samples.append(during())
            report["during"] = max(samples)
    return report


def oversized_frames(count: int = 3, claimed: int = 1 << 30) -> list[bytes]:
    """``count`` 13-byte frames, each the first chunk of a message that claims ``claimed`` bytes."""
    return [chunk(1000 + k, 0, claimed, b"x") for k in range(count)]


def start(port: int, log_path: Path, *args: str) -> subprocess.Popen:
    """``neurorelevance web`` on a loopback port (see web_browser.start_server)."""
    from web_browser import start_server

    return start_server(port, log_path, *args)


async def call(port: int, secret: str, method: str, *args) -> dict:
    """Authenticate, call one RPC (e.g. ``trame.state.get``) and return its answer."""
    import aiohttp

    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as client, client.ws_connect(f"{url}/ws", origin=url, max_msg_size=0) as ws:
        await ws.send_bytes(hello(secret))
        await _decode(ws)
        await ws.send_bytes(packed({"wslink": "1.0", "id": "rpc:c0:1", "method": method,
                                    "args": list(args), "kwargs": {}}, message_id=8))
        while True:
            answer = await _decode(ws)
            if answer is None or answer.get("id") == "rpc:c0:1":
                return answer or {}


def server_state(port: int, secret: str) -> dict:
    """The trame state the page would receive on connecting."""
    return asyncio.run(call(port, secret, "trame.state.get")).get("result", {}).get("state", {})


async def post(port: int, path: str, body, headers: dict | None = None) -> tuple[int, str]:
    """POST ``body`` (bytes or an async generator of chunks) from the viewer's own origin."""
    import aiohttp

    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as client:
        try:
            async with client.post(f"{url}{path}", data=body, headers={"Origin": url, **(headers or {})},
                                   timeout=aiohttp.ClientTimeout(total=60)) as response:
                return response.status, await response.text()
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            return 0, f"connection dropped: {exc}"
