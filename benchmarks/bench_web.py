"""Time the web viewer as a user meets it, in a real headless Chromium.

Prints, for the bundled demo (2 mm synthetic subject, ad_cnn, LRP epsilon-plus, DesikanKilliany):

- server start: command launched -> port answers
- first overlay, default start (demo + autorun): page navigation -> coloured overlay pixels in the views
- Run click -> overlay (``--no-autorun`` server, page already loaded), median of several runs
- filter-range change -> redrawn views (pass filter, cached result, no new run), median of several moves
- reading aids: mouse move -> value under the cursor shown; table row click -> crosshair moved;
  layout switch -> the one large view drawn (medians)

Usage: ``.venv/bin/python benchmarks/bench_web.py [--repeats 5]`` (needs /usr/bin/chromium and OSMesa).
With ``--screenshot`` also writes ``Resources/Screenshots/web.png`` (the default page, explained
demo), ``web-axial.png`` (one large view, a table row's region under the crosshair, the value line)
and ``web-compare.png`` (a pinned LRP run beside a gradient × input run).
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

from web_browser import (  # noqa: E402
    free_port,
    heat_coloured,
    launch_browser,
    missing_requirement,
    served_url,
    slot_pixels,
    start_server,
    state,
    stop_server,
    views_pixels,
    wait_pixels_change,
    wait_state,
    without_legend,
)


def _overlay_visible(page, timeout: float = 120.0) -> float:
    """Seconds until the axial view shows the heatmap's colours (polling screenshots)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        views_pixels(page)
        if heat_coloured(without_legend(slot_pixels(page, "Red", timeout=0.0))).mean() > 0.005:
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
        track = page.locator(".v-slider__container:has(#nr-filter-range_start) .v-slider-track")
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
        page.mouse.click(box["x"] + 0.02 * box["width"], box["y"] + box["height"] / 2)
        page.locator("#nr-filter-type").click(force=True)
        page.get_by_role("option", name="none", exact=True).click()
        reading = reading_aids(page, repeats, screenshot)
        browser.close()
    finally:
        stop_server(proc)
    return runs, moves, applied, reading


def _crosshair(pixels) -> tuple[int, int]:
    """Screen column and row of the crosshair's lines (a warm yellow) in a view's pixels."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    line = (r > 80) & (g > 0.7 * r) & (r - b > 40)
    return int(line.sum(axis=0).argmax()), int(line.sum(axis=1).argmax())


def _timed(action, condition: str, page) -> float:
    t0 = time.perf_counter()
    action()
    wait_state(page, condition)
    return time.perf_counter() - t0


def reading_aids(page, repeats: int, screenshot: Path | None) -> dict:
    """Medians of: value under the cursor, row click -> crosshair, layout switch -> large view."""
    import json

    times = {"probe": [], "row": [], "layout": []}
    top = "document.querySelector('.v-navigation-drawer__content').scrollTop = 0"
    if screenshot is not None:
        time.sleep(2.0)
        views_pixels(page)
        page.mouse.move(560, 320)
        time.sleep(1.0)
        page.evaluate(top)
        page.screenshot(path=str(screenshot))
    red = page.locator("#nr-view-Red").bounding_box()
    for index in range(repeats):
        before = json.dumps(state(page, "probe"))
        x = red["x"] + (0.3 + 0.08 * index) * red["width"]
        times["probe"].append(_timed(lambda x=x: page.mouse.move(x, red["y"] + 0.5 * red["height"]),
                                     f"JSON.stringify(s('probe')) !== {json.dumps(before)}", page))
        row = page.locator("#nr-table tbody tr").nth(index % 4)
        name = row.locator("td").nth(1).inner_text()
        times["row"].append(_timed(row.click, f"s('crosshair_region') === {name!r}", page))
        for layout in ("Axial", "Three slices"):
            page.locator("#nr-layout").click(force=True)
            t0 = time.perf_counter()
            page.get_by_role("option", name=layout, exact=True).click()
            wait_state(page, f"s('layout') === {layout!r}")
            box = page.locator("#nr-view-Red").bounding_box()
            while box["width"] < (0.9 if layout == "Axial" else 0.25) * 1100 or \
                    (layout != "Axial" and box["width"] > 0.5 * 1100):
                time.sleep(0.02)
                box = page.locator("#nr-view-Red").bounding_box()
            slot_pixels(page, "Red")
            if layout == "Axial":
                times["layout"].append(time.perf_counter() - t0)
                if screenshot is not None and index == 0:
                    page.locator("#nr-table tbody tr").nth(0).click()
                    time.sleep(2.0)
                    x, y = _crosshair(slot_pixels(page, "Red"))  # hover where the crosshair is
                    big = page.locator("#nr-view-Red").bounding_box()
                    page.mouse.move(big["x"] + x + 4, big["y"] + y + 4)
                    time.sleep(1.0)
                    page.evaluate(top)
                    page.screenshot(path=str(screenshot.with_name("web-axial.png")))
    if screenshot is not None:
        page.click("#nr-pin")
        page.locator("#nr-method").evaluate("e => e.scrollIntoView({block: 'center'})")
        page.locator("#nr-method").click(force=True)
        page.get_by_role("option", name="gradient_x_input", exact=True).click()
        count = state(page, "runs_started")
        page.click("#nr-run")
        wait_state(page, f"s('runs_started') > {count} && !s('busy')", 120000)
        time.sleep(2.5)
        slot_pixels(page, "Red")
        slot_pixels(page, "Compare")
        page.evaluate("document.querySelector('.v-navigation-drawer__content').scrollTop = 0")
        page.screenshot(path=str(screenshot.with_name("web-compare.png")))
    return times


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
        runs, moves, applied, reading = interactive(playwright, Path(tmp), args.repeats, shot)
    print(f"server start -> listening            {listening:6.2f} s")
    print(f"page load -> first overlay (autorun)  {first:6.2f} s")
    print(f"Run click -> overlay (median of {len(runs)})    {statistics.median(runs):6.2f} s  "
          f"(all: {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"filter range -> redraw (median of {len(moves)}) {statistics.median(moves):6.2f} s  "
          f"(all: {', '.join(f'{m:.2f}' for m in moves)})")
    print(f"  of which: change -> server applied   {statistics.median(applied):6.2f} s  "
          f"(all: {', '.join(f'{a:.2f}' for a in applied)})")
    for key, text in (("probe", "mouse move -> value under cursor"), ("row", "table row -> crosshair there"),
                      ("layout", "layout -> one large view drawn")):
        values = reading[key]
        print(f"{text:37s} {statistics.median(values):6.2f} s  (all: {', '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
