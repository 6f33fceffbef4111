"""Uploads over plain HTTP, streamed to disk: never through the WebSocket, never whole in memory.

The page POSTs the chosen file to ``/nr-upload?name=<file name>`` with the page's upload token
(a random value only authenticated pages receive, in the trame state) in the
``X-NeuroRelevance-Upload`` header. The server refuses a declared ``Content-Length`` above the
limit before reading a byte, writes the body block by block into the session's private folder
(stopping at the limit), then loads it as the new input exactly as the Slicer module would.
One upload at a time. The answer is JSON ``{"ok": bool, "message": str}``; the page's error or
info line shows the same message.
"""
from __future__ import annotations

import asyncio
import hmac
import logging

log = logging.getLogger(__name__)

UPLOAD_PATH = "/nr-upload"
TOKEN_HEADER = "X-NeuroRelevance-Upload"
BLOCK = 1 << 20

#: the page's side: POST the chosen file, show a refusal the server could not put in the state
UPLOAD_SCRIPT = """
window.nrUpload = async function (files, token) {
  const file = Array.isArray(files) ? files[0] : files;
  if (!file) { return; }
  const show = (message) => window.trame && window.trame.state.update({error: message, error_where: "inputs"});
  try {
    const response = await fetch("nr-upload?name=" + encodeURIComponent(file.name), {
      method: "POST", body: file, headers: {"X-NeuroRelevance-Upload": token}});
    const body = await response.json().catch(
      () => ({ok: false, message: "The server refused the upload (HTTP " + response.status + ")."}));
    if (!body.ok) { show(body.message); }
  } catch (error) {
    show("The upload of " + file.name + " failed: " + error);
  }
};
"""


def install(wslink_server, app) -> None:
    """Add the upload route to trame's aiohttp application (``app``: the RelevanceWebApp)."""
    from aiohttp import web

    busy = asyncio.Lock()

    def answer(status: int, ok: bool, message: str):
        return web.json_response({"ok": ok, "message": message}, status=status)

    async def upload(request):
        token = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(token.encode(), app.upload_token.encode()):
            return answer(403, False, "This upload did not come from the viewer's page.")
        limit = app.session.gate.max_upload
        if request.content_length is not None and request.content_length > limit:
            return answer(413, False, f"The file is {request.content_length / 2**20:.0f} MB; uploads are "
                                      f"limited to {limit / 2**20:.0f} MB. Put it in a --data folder and "
                                      "type its path instead.")
        if busy.locked():
            return answer(409, False, "Another upload is in progress; wait for it.")
        async with busy:
            return await _receive(request, app, answer)

    wslink_server.app.router.add_post(UPLOAD_PATH, upload)


async def _receive(request, app, answer):
    from ..errors import InputError

    state = app.state
    try:
        if app.job is not None:
            raise InputError("A run is in progress: wait for it or Cancel it first.")
        receiver = app.session.receive_upload(request.query.get("name", ""))
    except InputError as exc:
        return _refuse(app, answer, 400, str(exc))
    try:
        async for block in request.content.iter_chunked(BLOCK):
            receiver.write(block)  # stops at the limit: nothing beyond it is read or kept
    except InputError as exc:
        return _refuse(app, answer, 413, str(exc))
    except BaseException:  # the browser went away mid-upload
        receiver.abort()
        raise
    with state:
        if app.load_received(receiver):
            return answer(200, True, state.info)
        return answer(400, False, state.error)


def _refuse(app, answer, status: int, message: str):
    with app.state:
        app.state.error, app.state.error_where = message, "inputs"
    return answer(status, False, message)
