"""Time the web viewer as a user meets it, in a real headless Chromium.

Prints, for the bundled demo (2 mm synthetic subject, ad_cnn, LRP epsilon-plus, DesikanKilliany):

- server start: command launched -> port answers
- first overlay, default start (demo + autorun): page navigation -> coloured overlay pixels in the views
- Run click -> overlay (``--no-autorun`` server, page already loaded), median of several runs
- α-range change -> redrawn views (pass filter, cached result, no new run), median of several moves

Usage: ``.venv/bin/python benchmarks/bench_web.py [--repeats 5]`` (needs /usr/bin/chromium and OSMesa).
Also writes ``Resources/Screenshots/web.png`` with ``--screenshot``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing"))

from web_browser import (coloured, free_port, launch_browser, missing_requirement,  # noqa: E402
                         served_url, start_server, state, stop_server, views_pixels, wait_pixels_change,
                         wait_state)


def _overlay_visible(page, timeout: float = 120.0) -> float:
    """Seconds until the views show a coloured overlay (polling screenshots)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if coloured(views_pixels(page)).mean() > 0.01:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise TimeoutError("no overlay appeared")


def first_overlay(playwright, log_dir: Path) -> tuple[float, float]:
    port = free_port()
    started = time.perf_counter()
    proc = start_server(port, log_dir / "autorun.log")
    url = served_url(log_dir / "autorun.log")  # the address with this server's secret
    listening = time.perf_counter() - started
    try:
        browser = launch_browser(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#nr-views", timeout=60000)
        _overlay_visible(page)
        seconds = time.perf_counter() - t0
        browser.close()
    finally:
        stop_server(proc)
    return listening, seconds


def interactive(playwright, log_dir: Path, repeats: int, screenshot: Path | None):
    port = free_port()
    proc = start_server(port, log_dir / "interactive.log", "--no-autorun")
    url = served_url(log_dir / "interactive.log")
    runs, moves, applied = [], [], []
    try:
        browser = launch_browser(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(url)
        page.wait_for_selector("#nr-run", timeout=60000)
        wait_state(page, "s('input_name') !== ''")
        time.sleep(1.5)
        for index in range(repeats):
            before = views_pixels(page)
            count = state(page, "runs_started")
            t0 = time.perf_counter()
            page.click("#nr-run")
            if index == 0:
                _overlay_visible(page)
            else:
                wait_state(page, f"s('runs_started') > {count} && !s('busy')")
                wait_pixels_change(page, before, min_changed=0.0)
            runs.append(time.perf_counter() - t0)
        page.locator("#nr-filter-type").click(force=True)
        page.get_by_role("option", name="pass", exact=True).click()
        wait_state(page, "s('filter_type') === 'pass'")
        time.sleep(1.0)
        track = page.locator(".v-slider__container:has(#nr-alpha-range_start) .v-slider-track")
        box = track.bounding_box()
        for index in range(repeats):
            before = views_pixels(page)
            updates = state(page, "overlay_updates")
            fraction = 0.08 + 0.22 * ((index + 1) % 2)  # the lower thumb: alternate 0.30 / 0.08
            t0 = time.perf_counter()
            page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)
            wait_state(page, f"s('overlay_updates') > {updates}")
            applied.append(time.perf_counter() - t0)
            _, _ = wait_pixels_change(page, before)
            moves.append(time.perf_counter() - t0)
        if screenshot is not None:
            page.mouse.click(box["x"] + 0.02 * box["width"], box["y"] + box["height"] / 2)
            page.locator("#nr-filter-type").click(force=True)
            page.get_by_role("option", name="none", exact=True).click()
            page.set_viewport_size({"width": 1500, "height": 1300})  # the whole panel
            time.sleep(2.5)
            views_pixels(page)
            page.evaluate("document.querySelector('.v-navigation-drawer__content').scrollTop = 0")
            page.screenshot(path=str(screenshot))
        browser.close()
    finally:
        stop_server(proc)
    return runs, moves, applied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--screenshot", action="store_true",
                        help="write Resources/Screenshots/web.png from the interactive session")
    args = parser.parse_args()
    reason = missing_requirement()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    from playwright.sync_api import sync_playwright

    shot = ROOT / "Resources" / "Screenshots" / "web.png" if args.screenshot else None
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        listening, first = first_overlay(playwright, Path(tmp))
        runs, moves, applied = interactive(playwright, Path(tmp), args.repeats, shot)
    print(f"server start -> listening            {listening:6.2f} s")
    print(f"page load -> first overlay (autorun)  {first:6.2f} s")
    print(f"Run click -> overlay (median of {len(runs)})    {statistics.median(runs):6.2f} s  "
          f"(all: {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"α change -> redraw (median of {len(moves)})     {statistics.median(moves):6.2f} s  "
          f"(all: {', '.join(f'{m:.2f}' for m in moves)})")
    print(f"  of which: α change -> server applied   {statistics.median(applied):6.2f} s  "
          f"(all: {', '.join(f'{a:.2f}' for a in applied)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
