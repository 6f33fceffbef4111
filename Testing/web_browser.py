"""Helpers for the browser tests: start ``neurorelevance web``, drive Debian's Chromium, read pixels.

Nothing here is a stand-in: the server is the real command on a free loopback port, the page is
rendered by a real headless Chromium through Playwright (which never downloads a browser here).
"""
from __future__ import annotations

import ctypes.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
#: screenshots of the browser tests land here (kept after the run; ignored by git)
ARTIFACTS = Path(os.environ.get("NEURORELEVANCE_ARTIFACTS", ROOT / "test-artifacts" / "web"))


def missing_requirement() -> str:
    """Why the browser tests cannot run here ('' when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
        import trame_slicer  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (python3 run.py test installs it)"
    if not Path(CHROMIUM).exists():
        return (f"{CHROMIUM} not found: install Debian's chromium (python3 run.py test does so when "
                "run as root)")
    if ctypes.util.find_library("OSMesa") is None:
        return "OSMesa (libosmesa6) not found: offscreen rendering is impossible here"
    return ""


def installable_here() -> bool:
    """Whether the missing pieces could have been installed (root with apt-get: run.py does it)."""
    import shutil

    return os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path, *args: str, timeout: float = 180.0) -> subprocess.Popen:
    """Start ``python -m NeuroRelevanceLib web`` and wait until the port answers."""
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    with open(log_path, "w") as log:  # the server writes to its own copy of the handle
        proc = subprocess.Popen([sys.executable, "-m", "NeuroRelevanceLib", "web", "--port", str(port),
                                 "--host", "127.0.0.1", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited ({proc.returncode}): {log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the web server did not listen within {timeout} s: {log_path.read_text()[-3000:]}")


def served_url(log_path: Path, timeout: float = 60.0) -> str:
    """The page's address with the server's secret, as ``neurorelevance web`` printed it."""
    import re

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"http://\S+\?secret=[A-Za-z0-9_\-]+", log_path.read_text(errors="replace"))
        if found:
            return found.group(0)
        time.sleep(0.3)
    raise RuntimeError(f"the web server printed no address with its secret: {log_path.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def state(page, name: str):
    """A value of the trame state as the page sees it."""
    return page.evaluate(f"window.trame.state.get({name!r})")


def wait_state(page, expression: str, timeout_ms: int = 60000) -> None:
    """Wait until a JavaScript expression over ``s`` (the trame state getter) is true."""
    page.wait_for_function(f"(() => {{ if (!window.trame || !window.trame.state) return false; "
                           f"const s = (n) => window.trame.state.get(n); return {expression}; }})()",
                           timeout=timeout_ms)


def views_pixels(page, name: str | None = None) -> np.ndarray:
    """RGB pixels of the slice-view area (after hovering it, which wakes the remote rendering)."""
    from io import BytesIO

    from PIL import Image

    box = page.locator("#nr-views").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    png = page.locator("#nr-views").screenshot()
    if name:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.png").write_bytes(png)
    return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)


def wait_pixels_change(page, before: np.ndarray, timeout: float = 20.0, min_changed: float = 0.002):
    """Screenshot the views until they differ from ``before``; returns (pixels, seconds)."""
    started = time.perf_counter()
    while True:
        now = views_pixels(page)
        if now.shape == before.shape and changed_fraction(before, now) >= min_changed:
            return now, time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            return now, time.perf_counter() - started
        time.sleep(0.1)


def changed_fraction(a: np.ndarray, b: np.ndarray, tolerance: int = 24) -> float:
    return float(np.mean(np.abs(a - b).max(axis=-1) > tolerance))


def coloured(pixels: np.ndarray, margin: int = 40) -> np.ndarray:
    """Pixels with clear hue (the overlay's reds and blues, the yellow letters); the MRI is grey."""
    return (pixels.max(axis=-1) - pixels.min(axis=-1)) > margin


def heat_coloured(pixels: np.ndarray, margin: int = 40) -> np.ndarray:
    """The heatmap's reds and blues only (not the yellow letters and crosshair, whose green is high)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return ((r - np.maximum(g, b)) > margin) | ((b - np.maximum(r, g)) > margin)


def without_legend(pixels: np.ndarray) -> np.ndarray:
    """A view's pixels without its right-hand strip (colour legend at the top, orientation axes at
    the bottom), so that what is left of the heatmap's colours is the map over the scan."""
    return pixels[:, : int(0.82 * pixels.shape[1])]



def download(page, button: str, folder: Path) -> Path:
    """Click a download button and save what the browser receives under its suggested name."""
    with page.expect_download() as info:
        page.click(button)
    path = Path(folder) / info.value.suggested_filename
    info.value.save_as(path)
    return path


def slot_box(page, slot: str):
    """Bounding box of the view slot ``#nr-view-<slot>`` (None when it is not displayed)."""
    locator = page.locator(f"#nr-view-{slot}")
    if locator.count() == 0 or not locator.is_visible():
        return None
    return locator.bounding_box()


def slot_pixels(page, slot: str, name: str | None = None, timeout: float = 20.0) -> np.ndarray:
    """RGB pixels of one view slot once it shows a rendered frame (screenshot kept under ``name``).

    A view that has not been hovered yet may still show its first, black frame: the mouse is moved
    over it (without clicking) until something is drawn.
    """
    from io import BytesIO

    from PIL import Image

    locator = page.locator(f"#nr-view-{slot}")
    box = locator.bounding_box()
    deadline = time.monotonic() + timeout
    while True:
        png = locator.screenshot()
        pixels = np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)
        if pixels.max() > 40 or time.monotonic() > deadline:
            break
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        time.sleep(0.3)
    if name:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.png").write_bytes(png)
    return pixels
