"""Images that read alone: orientation letters, slice positions, a colour bar with values, a caption.

Every picture NeuroRelevance renders itself goes through here (matplotlib's Agg canvas, no pyplot,
no display). :func:`compose` lays slice views out side by side, each with its four orientation
letters and its position in mm, adds a colour bar with its values, unit and what red and blue mean,
and a caption (what ran, on what, and what the model is for). :func:`add_caption` puts the same
caption under a chart. Letters come from the view's own geometry (:func:`orientation_letters`), so
they are right for any orientation; NeuroRelevance follows Slicer's radiological convention
(patient right on image left) and says so on the image.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

BACKGROUND = "#000000"
TEXT = "#eeeeee"
LETTER = "#ffd54a"
WARNING = "#ffb000"
CHART_WARNING = "#a04000"
#: layout in pixels: margin for letters around a tile, title row, colour bar column
MARGIN, TITLE, BAR_WIDTH, BAR_COLUMN, GAP = 22, 20, 16, 180, 14
CAPTION_PT = 8.0
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("S", "I"))


@dataclass
class Tile:
    """One rendered view: pixels (H, W, 3|4 uint8, top row first), name, position and edge letters."""

    pixels: np.ndarray
    title: str = ""
    position: str = ""
    letters: dict = field(default_factory=dict)   # left, right, top, bottom -> "R", "L", ...


@dataclass
class ColourBar:
    """A colour table drawn from ``low`` (bottom) to ``high`` (top) with values and meaning."""

    rgba: np.ndarray                  # (n, 4) in [0, 1]; alpha 0 = not drawn (below the threshold)
    low: float
    high: float
    label: str = "relevance (a.u.)"
    top_meaning: str = ""             # e.g. "red: raises the AD score"
    bottom_meaning: str = ""          # e.g. "blue: lowers it"
    note: str = ""                    # e.g. "|R| < 5% of the window hidden"


@dataclass
class Layout:
    """Where things were drawn, in pixels (x0, y0, x1, y1; origin top left), for checks and tests."""

    size: tuple[int, int]
    tiles: list = field(default_factory=list)
    letters: list = field(default_factory=list)   # (text, box)
    positions: list = field(default_factory=list)  # (text, box)
    colour_bar: Optional[tuple] = None
    caption: Optional[tuple] = None


def direction_letter(vector: Sequence[float]) -> str:
    """The RAS letter a direction points to most ("R", "L", "A", "P", "S" or "I")."""
    v = np.asarray(vector, dtype=float)[:3]
    axis = int(np.argmax(np.abs(v)))
    return _AXIS_LETTERS[axis][0 if v[axis] >= 0 else 1]


def orientation_letters(xy_to_ras: np.ndarray) -> dict:
    """Letters at the edges of a view whose screen x (right) and y (up) map to RAS by ``xy_to_ras``."""
    m = np.asarray(xy_to_ras, dtype=float)
    right, up = m[:3, 0], m[:3, 1]
    return {"left": direction_letter(-right), "right": direction_letter(right),
            "top": direction_letter(up), "bottom": direction_letter(-up)}


def position_text(normal: Sequence[float], offset: float) -> str:
    """Slice position along its normal, as Slicer shows it: "S 12.0 mm", "I 3.5 mm", "R 40.0 mm"."""
    n = np.asarray(normal, dtype=float)[:3]
    axis = int(np.argmax(np.abs(n)))
    sign = np.sign(n[axis]) * np.sign(offset) if offset else 1.0
    return f"{_AXIS_LETTERS[axis][0 if sign >= 0 else 1]} {abs(offset):.1f} mm"


def wrap(lines: Sequence[str], width: int) -> list[str]:
    """Caption lines wrapped at ``width`` characters (each input line starts a new line)."""
    out = []
    for line in lines:
        out += textwrap.wrap(line, width, subsequent_indent="  ") or [""]
    return out


def _is_warning(line: str) -> bool:
    lower = line.lower()
    return line.startswith("⚠") or "not for clinical use" in lower or line.startswith("Limits")


def add_caption(figure, lines: Sequence[str], fontsize: float = 7.5) -> float:
    """Grow ``figure`` downwards and write ``lines`` there; returns the caption's height fraction.

    Pass the fraction to ``tight_layout(rect=(0, fraction, 1, 1))``; a constrained-layout figure is
    adjusted here. Lines about intended use and limits are drawn in a warning colour.
    """
    if not lines:
        return 0.0
    width_in, height_in = figure.get_size_inches()
    wrapped = wrap(lines, max(int(width_in * 72 / (fontsize * 0.56)), 40))
    line_in = fontsize * 1.4 / 72
    extra = line_in * (len(wrapped) + 0.8)
    figure.set_size_inches(width_in, height_in + extra)
    fraction = extra / (height_in + extra)
    engine = figure.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "rect" in engine.get():
        engine.set(rect=(0, fraction, 1, 1 - fraction))
    warn = False
    for index, line in enumerate(wrapped):
        warn = _is_warning(line) or (warn and line.startswith("  "))
        figure.text(0.01, fraction - (index + 0.4) * line_in / (height_in + extra), line, ha="left",
                    va="top", fontsize=fontsize, color=CHART_WARNING if warn else "#222222")
    return fraction


def compose(tiles: Sequence[Tile], colour_bar: Optional[ColourBar] = None, caption: Sequence[str] = (),
            path: str | Path | None = None, dpi: int = 100) -> tuple[np.ndarray, Layout]:
    """Lay ``tiles`` out in a row with letters, positions, a colour bar and a caption.

    Returns the RGBA pixels (top row first) and the :class:`Layout`; writes a PNG when ``path`` is
    given. Tiles keep their pixel size (no resampling of the rendered views).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not tiles:
        raise ValueError("compose needs at least one tile")
    tile_h = max(t.pixels.shape[0] for t in tiles)
    width = sum(t.pixels.shape[1] + 2 * MARGIN + GAP for t in tiles) - GAP + (BAR_COLUMN if colour_bar else 0)
    chars = max(int(width / (CAPTION_PT * dpi / 72 * 0.55)), 40)
    lines = wrap(caption, chars)
    line_px = int(round(CAPTION_PT * 1.45 * dpi / 72))
    caption_h = (len(lines) * line_px + 12) if lines else 0
    row_h = TITLE + 2 * MARGIN + tile_h
    height = row_h + caption_h
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    layout = Layout((width, height))

    def text(x: float, y: float, s: str, **kw) -> None:
        figure.text(x / width, 1 - y / height, s, **{"color": TEXT, "fontsize": 9, **kw})

    x = 0
    for tile in tiles:
        h, w = tile.pixels.shape[:2]
        x0, y0 = x + MARGIN, TITLE + MARGIN + (tile_h - h) // 2
        axes = figure.add_axes((x0 / width, 1 - (y0 + h) / height, w / width, h / height))
        axes.imshow(tile.pixels[..., :3], interpolation="nearest", aspect="auto")
        axes.set_axis_off()
        layout.tiles.append((x0, y0, x0 + w, y0 + h))
        if tile.title or tile.position:
            label = " · ".join(s for s in (tile.title, tile.position) if s)
            text(x0 + w / 2, TITLE / 2 + 2, label, ha="center", va="center", fontsize=9.5)
            layout.positions.append((label, (x0, 0, x0 + w, TITLE)))
        centres = {"left": (x0 - MARGIN / 2, y0 + h / 2), "right": (x0 + w + MARGIN / 2, y0 + h / 2),
                   "top": (x0 + w / 2, y0 - MARGIN / 2), "bottom": (x0 + w / 2, y0 + h + MARGIN / 2)}
        for edge, letter in tile.letters.items():
            cx, cy = centres[edge]
            text(cx, cy, letter, ha="center", va="center", fontsize=12, fontweight="bold", color=LETTER)
            half = MARGIN / 2
            layout.letters.append((letter, (int(cx - half), int(cy - half), int(cx + half), int(cy + half))))
        x += w + 2 * MARGIN + GAP
    if colour_bar is not None:
        layout.colour_bar = _draw_bar(figure, colour_bar, x - GAP, TITLE + MARGIN, tile_h, (width, height), text)
    if lines:
        top = row_h + 4
        for index, line in enumerate(lines):
            colour = WARNING if _is_warning(line) or (index and line.startswith("  ") and _is_warning(
                lines[index - 1])) else TEXT
            text(8, top + index * line_px, line, ha="left", va="top", fontsize=CAPTION_PT, color=colour)
        layout.caption = (0, row_h, width, height)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba()).copy()
    if path is not None:
        from matplotlib.image import imsave

        imsave(Path(path), pixels)
    return pixels, layout


def _draw_bar(figure, bar: ColourBar, x: int, top: int, height: int, size: tuple[int, int], text) -> tuple:
    width, total = size
    x0 = x + 10
    bar_top, bar_h = top + 22, max(height - 66, 40)
    axes = figure.add_axes((x0 / width, 1 - (bar_top + bar_h) / total, BAR_WIDTH / width, bar_h / total))
    rgba = np.asarray(bar.rgba, dtype=float)
    colours = np.where(rgba[:, 3:4] > 0, rgba[:, :3], 0.18)  # hidden entries: dark grey
    axes.imshow(colours[::-1, None, :], aspect="auto", interpolation="nearest",
                extent=(0, 1, bar.low, bar.high))
    axes.set_xticks([])
    ticks = np.linspace(bar.low, bar.high, 5)
    axes.set_yticks(ticks, labels=[_value(t) for t in ticks])
    axes.yaxis.tick_right()
    axes.tick_params(colors=TEXT, labelsize=8, length=3)
    for spine in axes.spines.values():
        spine.set_color(TEXT)
    text(x0 + BAR_WIDTH / 2 - 4, top + 6, bar.top_meaning, ha="left", va="center", fontsize=8)
    text(x0 + BAR_WIDTH / 2 - 4, bar_top + bar_h + 14, bar.bottom_meaning, ha="left", va="center", fontsize=8)
    text(x0 + BAR_WIDTH + 62, bar_top + bar_h / 2, bar.label, ha="center", va="center", fontsize=8.5,
         rotation=90)
    if bar.note:
        text(x0 - 4, bar_top + bar_h + 30, "\n".join(textwrap.wrap(bar.note, 28)), ha="left", va="top",
             fontsize=7)
    return (x0, bar_top, x0 + BAR_WIDTH, bar_top + bar_h)


def _value(value: float) -> str:
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:+.3g}"
