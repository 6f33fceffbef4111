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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .colour_bar import ColourBar, measure, text_size, wrap_pixels
from .colour_bar import draw as draw_bar

__all__ = ["ColourBar", "Layout", "Tile", "add_caption", "compose", "direction_letter", "orientation_letters",
           "position_text", "wrap"]

BACKGROUND = "#000000"
TEXT = "#eeeeee"
LETTER = "#ffd54a"
WARNING = "#ffb000"
CHART_WARNING = "#a04000"
#: layout in pixels: margin for letters around a tile, title row, colour bar column
MARGIN, TITLE, GAP = 22, 20, 14
CAPTION_PT, TITLE_PT = 8.0, 9.5
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("S", "I"))


@dataclass
class Tile:
    """One rendered view: pixels (H, W, 3|4 uint8, top row first), name, position and edge letters."""

    pixels: np.ndarray
    title: str = ""
    position: str = ""
    letters: dict = field(default_factory=dict)   # left, right, top, bottom -> "R", "L", ...


@dataclass
class Layout:
    """Where things were drawn, in pixels (x0, y0, x1, y1; origin top left), for checks and tests."""

    size: tuple[int, int]
    tiles: list = field(default_factory=list)
    letters: list = field(default_factory=list)   # (text, box)
    positions: list = field(default_factory=list)  # (text, box)
    colour_bar: tuple | None = None
    caption: tuple | None = None
    texts: list = field(default_factory=list)      # (text, box) of every text drawn, tick labels included


def direction_letter(vector: Sequence[float] | np.ndarray) -> str:
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


def position_text(normal: Sequence[float] | np.ndarray, offset: float) -> str:
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


def compose(tiles: Sequence[Tile], colour_bar: ColourBar | None = None, caption: Sequence[str] = (),
            path: str | Path | None = None, dpi: int = 100) -> tuple[np.ndarray, Layout]:
    """Lay ``tiles`` out in a row with letters, positions, a colour bar and a caption.

    Returns the RGBA pixels (top row first) and the :class:`Layout`; writes a PNG when ``path`` is
    given. Tiles keep their pixel size (no resampling of the rendered views). Every text is measured
    first: a tile's column is as wide as its title, the colour bar's column as its labels, the image
    as tall as the bar's texts need, and caption lines wrap at the image's width, so at any tile size
    no text is cut off at an edge or drawn over another.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not tiles:
        raise ValueError("compose needs at least one tile")
    labels = [" · ".join(s for s in (t.title, t.position) if s) for t in tiles]
    slots = [int(max(t.pixels.shape[1] + 2 * MARGIN, text_size(label, TITLE_PT, dpi)[0] + 8))
             for t, label in zip(tiles, labels, strict=True)]
    tile_h = max(t.pixels.shape[0] for t in tiles)
    bar = measure(colour_bar, dpi) if colour_bar is not None else None
    body_h = int(np.ceil(max(tile_h + 2 * MARGIN, bar.height() + 8 if bar else 0)))
    width = sum(slots) + GAP * (len(tiles) - 1) + (bar.width if bar else 0)
    lines = [part for line in caption for part in _indent(wrap_pixels(line, CAPTION_PT, width - 24, dpi))]
    line_px = int(round(CAPTION_PT * 1.45 * dpi / 72))
    caption_h = (len(lines) * line_px + 12) if lines else 0
    row_h = TITLE + body_h
    height = row_h + caption_h
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=BACKGROUND)
    canvas = FigureCanvasAgg(figure)
    layout = Layout((width, height))

    def text(x: float, y: float, s: str, **kw) -> None:
        figure.text(x / width, 1 - y / height, s, **{"color": TEXT, "fontsize": 9, **kw})

    x = 0
    for tile, label, slot in zip(tiles, labels, slots, strict=True):
        h, w = tile.pixels.shape[:2]
        x0, y0 = x + (slot - w) // 2, TITLE + (body_h - h) // 2
        axes = figure.add_axes((x0 / width, 1 - (y0 + h) / height, w / width, h / height))
        axes.imshow(tile.pixels[..., :3], interpolation="nearest", aspect="auto")
        axes.set_axis_off()
        layout.tiles.append((x0, y0, x0 + w, y0 + h))
        if label:
            text(x + slot / 2, TITLE / 2 + 2, label, ha="center", va="center", fontsize=TITLE_PT)
            layout.positions.append((label, (x, 0, x + slot, TITLE)))
        centres = {"left": (x0 - MARGIN / 2, y0 + h / 2), "right": (x0 + w + MARGIN / 2, y0 + h / 2),
                   "top": (x0 + w / 2, y0 - MARGIN / 2), "bottom": (x0 + w / 2, y0 + h + MARGIN / 2)}
        for edge, letter in tile.letters.items():
            cx, cy = centres[edge]
            text(cx, cy, letter, ha="center", va="center", fontsize=12, fontweight="bold", color=LETTER)
            half = MARGIN / 2
            layout.letters.append((letter, (int(cx - half), int(cy - half), int(cx + half), int(cy + half))))
        x += slot + GAP
    if colour_bar is not None and bar is not None:
        layout.colour_bar = draw_bar(figure, colour_bar, bar, x - GAP, TITLE + 4, body_h - 8, (width, height), text)
    if lines:
        top = row_h + 4
        for index, line in enumerate(lines):
            colour = WARNING if _is_warning(line) or (index and line.startswith("  ") and _is_warning(
                lines[index - 1])) else TEXT
            text(8, top + index * line_px, line, ha="left", va="top", fontsize=CAPTION_PT, color=colour)
        layout.caption = (0, row_h, width, height)
    canvas.draw()
    layout.texts = _text_boxes(figure, height)
    pixels = np.asarray(canvas.buffer_rgba()).copy()
    if path is not None:
        from matplotlib.image import imsave

        imsave(Path(path), pixels)
    return pixels, layout


def _indent(lines: list[str]) -> list[str]:
    """Continuation lines of a wrapped caption line start with two spaces (as :func:`wrap` does)."""
    return lines[:1] + [f"  {line}" for line in lines[1:]]


def _text_boxes(figure, height: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(text, (x0, y0, x1, y1)) of every visible text drawn, tick labels included (origin top left)."""
    renderer = figure.canvas.get_renderer()
    artists = list(figure.texts)
    for axes in figure.axes:
        if axes.axison:  # tiles have their axes off (nothing drawn)
            artists += [t for axis in (axes.xaxis, axes.yaxis) if axis.get_visible() for t in axis.get_ticklabels()]
    boxes = []
    for artist in artists:
        if not artist.get_visible() or not artist.get_text().strip():
            continue
        box = artist.get_window_extent(renderer)
        boxes.append((artist.get_text(), (box.x0, height - box.y1, box.x1, height - box.y0)))
    return boxes
