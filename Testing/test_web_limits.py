"""The web server's limits, over a real WebSocket and real HTTP to a real ``neurorelevance web``.

A hostile local process (or page) must not be able to make the server allocate what it did not
send: a 13-byte frame claiming 1 GiB, many half-sent messages, an upload that claims or streams
more than the limit. Each server has its own secret (trame's public default is refused) and serves
a bounded number of sessions. Memory is the server process's RSS (psutil) while the connection is
still open, before and after.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from web_browser import free_port, stop_server
from web_wire import (
    DEFAULT_SECRET,
    chunk,
    oversized_frames,
    packed,
    post,
    rss_mb,
    served_secret,
    server_state,
    session,
    start,
)

pytest.importorskip("trame_slicer")
pytest.importorskip("psutil")

UPLOAD_MB = 2
SESSIONS = 3


# ---- the reassembly itself (no server) -----------------------------------------------------------
def _unchunker(**limits):
    from NeuroRelevanceLib.web.limits import BoundedUnChunker, ServerLimits

    bounded = BoundedUnChunker(ServerLimits(**limits))
    bounded.set_max_message_size(4 << 30)  # what wslink asks for after a good hello: clamped
    return bounded


@pytest.mark.parametrize("size, chunk_size", [(10, 1000), (5000, 64), (300_000, 4096), (1 << 20, 65536)])
def test_messages_cut_by_wslink_come_back_whole(size, chunk_size):
    """Oracle: wslink's own chunking (what the page's client does) and msgpack."""
    import msgpack
    from wslink.chunking import generate_chunks

    message = {"id": "rpc:c0:9", "args": [np.random.default_rng(size).bytes(size)], "text": "ünï"}
    bounded = _unchunker(max_message=2 << 20)
    results = [bounded.process_chunk(part) for part in generate_chunks(msgpack.packb(message), chunk_size)]
    assert results[-1] == message and all(r is None for r in results[:-1])
    assert bounded.pending == {} and bounded.pending_declared == 0


def test_a_claimed_gigabyte_is_refused_before_anything_is_allocated():
    import tracemalloc

    from NeuroRelevanceLib.web.limits import LimitExceeded

    bounded = _unchunker()
    assert bounded.max_message_size == 16 << 20  # wslink's 4 GiB after hello is clamped
    tracemalloc.start()
    try:
        for k in range(3):
            with pytest.raises(LimitExceeded, match="declared"):
                bounded.process_chunk(chunk(k, 0, 1 << 30, b"x"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20 and bounded.pending == {}


@pytest.mark.parametrize("frames, why", [
    ([chunk(k, 0, 8 << 20, b"a") for k in range(5)], "unfinished"),            # declared bytes
    ([chunk(k, 0, 100, b"a") for k in range(9)], "unfinished"),                # message count
    ([chunk(1, 0, 100, b"ab"), chunk(1, 50, 100, b"cd")], "does not continue"),  # a gap
    ([chunk(1, 0, 100, b"ab"), chunk(1, 2, 99, b"cd")], "does not continue"),    # another total
    ([chunk(1, 0, 4, b"abcdef")], "does not continue"),                          # more than declared
    ([b"short"], "shorter than its header"),
])
def test_what_a_connection_may_hold_is_bounded(frames, why):
    from NeuroRelevanceLib.web.limits import LimitExceeded

    bounded = _unchunker(max_pending=32 << 20, max_unfinished=8)
    with pytest.raises(LimitExceeded, match=why):
        for frame in frames:
            bounded.process_chunk(frame)
    assert bounded.pending_declared <= 32 << 20


def test_before_the_hello_only_small_messages_pass():
    from NeuroRelevanceLib.web.limits import BoundedUnChunker, LimitExceeded, ServerLimits

    bounded = BoundedUnChunker(ServerLimits())
    with pytest.raises(LimitExceeded):
        bounded.process_chunk(chunk(1, 0, 10_000, b"x"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import nibabel as nib

    data = tmp_path_factory.mktemp("web-limits-data")
    log = tmp_path_factory.mktemp("web-limits-log") / "server.log"
    scan = np.random.default_rng(0).normal(100, 20, (12, 14, 10)).astype(np.float32)
    nib.save(nib.Nifti1Image(scan, np.diag([2.0, 2.0, 2.5, 1.0])), data / "small.nii.gz")
    port = free_port()
    proc = start(port, log, "--no-demo", "--data", str(data), "--max-upload-mb", str(UPLOAD_MB),
                 "--max-sessions", str(SESSIONS))
    secret = served_secret(log)
    time.sleep(2)  # let start-up allocations settle before the memory is compared
    yield SimpleNamespace(port=port, pid=proc.pid, secret=secret, log=log, data=data, proc=proc)
    stop_server(proc)


def test_each_server_has_its_own_secret_and_refuses_the_public_default(server):
    assert server.secret != DEFAULT_SECRET and len(server.secret) >= 32
    assert not asyncio.run(session(server.port, DEFAULT_SECRET, []))["authenticated"]
    assert asyncio.run(session(server.port, server.secret, []))["authenticated"]


def test_frames_claiming_a_gigabyte_allocate_nothing(server):
    before = rss_mb(server.pid)
    report = asyncio.run(session(server.port, server.secret, oversized_frames(3), lambda: rss_mb(server.pid)))
    print(f"server RSS {before:.0f} MB -> {report['during']:.0f} MB while three 13-byte frames "
          "claiming 1 GiB each were pending")
    assert report["authenticated"]
    assert report["during"] - before < 64, "the claimed size was allocated"
    assert report["closed"], "the connection that sent them stayed open"
    assert asyncio.run(session(server.port, server.secret, []))["authenticated"]  # still serving


def test_many_half_sent_messages_are_bounded(server):
    """Each message under the limit, but together far beyond what a connection may hold pending."""
    frames = [chunk(3000 + k, 0, 8 << 20, b"y" * 4096) for k in range(200)]
    before = rss_mb(server.pid)
    report = asyncio.run(session(server.port, server.secret, frames, lambda: rss_mb(server.pid)))
    assert report["closed"] and report["during"] - before < 64


def test_a_message_in_several_chunks_is_still_put_together(server):
    """The limit is not a refusal of chunking: a message sent in 3 chunks gets its answer."""
    body = packed({"wslink": "1.0", "id": "rpc:c0:5", "method": "no.such.method", "args": [], "kwargs": {}})[12:]
    parts = [body[:5], body[5:9], body[9:]]
    offsets = [0, 5, 9]
    frames = [chunk(4000, offset, len(body), part) for offset, part in zip(offsets, parts, strict=True)]
    report = asyncio.run(session(server.port, server.secret, frames))
    assert report["authenticated"] and not report["closed"]


def test_a_frame_above_the_frame_limit_is_refused_but_big_messages_in_chunks_pass(server):
    import msgpack

    big = chunk(5000, 0, 5 << 20, b"f" * (5 << 20))  # one 5 MiB frame: over the 4 MiB frame limit
    report = asyncio.run(session(server.port, server.secret, [big]))
    assert report["authenticated"] and report["closed"]
    body = msgpack.packb({"wslink": "1.0", "id": "rpc:c0:6", "method": "no.such.method",
                          "args": ["p" * (6 << 20)], "kwargs": {}})  # a 6 MiB message in 3 MiB chunks
    frames = [chunk(5001, offset, len(body), body[offset:offset + (3 << 20)])
              for offset in range(0, len(body), 3 << 20)]
    report = asyncio.run(session(server.port, server.secret, frames))
    assert report["authenticated"] and not report["closed"]


def test_sessions_are_bounded(server):
    import aiohttp

    url = f"http://127.0.0.1:{server.port}"

    async def crowd():
        async with aiohttp.ClientSession() as client:
            open_ = [await client.ws_connect(f"{url}/ws", origin=url) for _ in range(SESSIONS)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"{url}/ws", origin=url)
            await open_[0].close()
            await asyncio.sleep(0.5)
            again = await client.ws_connect(f"{url}/ws", origin=url)  # a freed place is taken
            for ws in [*open_[1:], again]:
                await ws.close()
            return refused.value.status

    assert asyncio.run(crowd()) == 503


# ---- uploads ------------------------------------------------------------------------------------
def _token(server) -> str:
    token = server_state(server.port, server.secret).get("upload_token")
    assert isinstance(token, str) and len(token) >= 32
    return token


def test_upload_claiming_more_than_the_limit_is_refused_before_reading(server):
    before = rss_mb(server.pid)
    status, text = asyncio.run(post(server.port, "/nr-upload?name=big.nii.gz", b"x" * 1024,
                                    {"X-NeuroRelevance-Upload": _token(server),
                                     "Content-Length": str(520 * 2**20)}))
    assert status in (413, 0), text  # refused from the header (or the connection dropped)
    assert rss_mb(server.pid) - before < 32


def test_streamed_upload_beyond_the_limit_stops_at_the_limit(server):
    sent = {"bytes": 0}

    async def stream():
        block = b"z" * (1 << 20)
        for _ in range(40):  # 40 MB, twenty times the limit
            sent["bytes"] += len(block)
            yield block

    before = rss_mb(server.pid)
    status, text = asyncio.run(post(server.port, "/nr-upload?name=big.nii.gz", stream(),
                                    {"X-NeuroRelevance-Upload": _token(server)}))
    grown = rss_mb(server.pid) - before
    print(f"streamed upload: server RSS grew {grown:.0f} MB; refused with {status}")
    assert status in (413, 0) and (status == 0 or f"{UPLOAD_MB} MB" in text), text
    assert grown < 32
    assert not list(Path("/tmp").glob("neurorelevance-web-*/upload-*/big.nii.gz"))


@pytest.mark.parametrize("headers", [{}, {"X-NeuroRelevance-Upload": "wrong"}])
def test_upload_without_the_page_token_is_refused(server, headers):
    status, _ = asyncio.run(post(server.port, "/nr-upload?name=s.nii.gz", b"abc", headers))
    assert status == 403


def test_upload_from_another_origin_is_refused(server):
    token = _token(server)

    async def foreign():
        import aiohttp

        async with aiohttp.ClientSession() as client, \
                client.post(f"http://127.0.0.1:{server.port}/nr-upload?name=s.nii.gz", data=b"abc",
                            headers={"Origin": "http://evil.example", "X-NeuroRelevance-Upload": token}) as response:
            return response.status

    assert asyncio.run(foreign()) == 403


def test_upload_of_a_scan_loads_it(server):
    content = (server.data / "small.nii.gz").read_bytes()
    status, text = asyncio.run(post(server.port, "/nr-upload?name=my%20scan.nii.gz", content,
                                    {"X-NeuroRelevance-Upload": _token(server)}))
    assert status == 200, text
    state = server_state(server.port, server.secret)
    assert state["input_name"] == "my_scan" and state["error"] == ""


def test_broken_upload_is_refused_with_a_message_and_keeps_the_input(server):
    status, text = asyncio.run(post(server.port, "/nr-upload?name=broken.nii.gz", b"not a scan" * 50,
                                    {"X-NeuroRelevance-Upload": _token(server)}))
    assert status == 400 and "broken" in text
    state = server_state(server.port, server.secret)
    assert "broken" in state["error"]


@pytest.mark.parametrize("secret", ["-leading-dash", "--looks-like-an-option", "plain_Secret-42"])
def test_a_secret_that_begins_with_a_dash_reaches_trame_whole(secret):
    """token_urlsafe may begin with '-': trame's own parser must still read the whole secret."""
    from trame.app import get_server

    from NeuroRelevanceLib.web.app import trame_argv

    argv = trame_argv("neurorelevance", secret)
    args, _ = get_server(f"secret-check-{secret}").cli.parse_known_args(argv[1:])
    assert args.authKey == secret
