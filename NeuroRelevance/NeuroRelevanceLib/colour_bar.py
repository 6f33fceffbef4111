"""The colour bar of our labelled images: values, unit, what red and blue mean — laid out by measuring.

Every piece of text is measured with matplotlib's own renderer before anything is placed, so the
column holding the bar is as wide as its tick labels and title need, long target names wrap
instead of running off the image, and the bar shrinks (or the image grows) rather than letting
text overlap. When the display window is a robust one (a percentile of |R|) and the map goes
beyond it, the ends say so ("≥ +0.417") and a note gives the window and the map's maximum.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

TEXT = "#eeeeee"
BAR_WIDTH = 16
#: font sizes (pt) of the tick labels, the unit label, the meanings and the notes
TICK_PT, UNIT_PT, MEANING_PT, NOTE_PT = 8.0, 8.5, 8.0, 7.0
#: the column never gets narrower than this (px) nor, for wrapping meanings and notes, wider
MIN_COLUMN, MAX_COLUMN = 120, 230
PAD = 6


@dataclass
class ColourBar:
    """A colour table drawn from ``low`` (bottom) to ``high`` (top) with values and meaning."""

    rgba: np.ndarray                  # (n, 4) in [0, 1]; alpha 0 = not drawn (below the threshold)
    low: float
    high: float
    label: str = "relevance (a.u.)"
    top_meaning: str = ""             # e.g. "red: raises the AD score"
    bottom_meaning: str = ""          # e.g. "blue: lowers it"
    note: str = ""                    # e.g. "|R| under 5% of the window is hidden"
    peak: float | None = None      # max |value| of the map shown; beyond the window: ends marked ≥ / ≤
    window: str = ""                  # how the window was chosen, e.g. "99.5th percentile of nonzero |R|"

    @property
    def saturated(self) -> bool:
        """True when the map goes beyond the window (its strongest values share the end colours)."""
        end = max(abs(self.low), abs(self.high))
        return self.peak is not None and end > 0 and self.peak > end * (1 + 1e-6)

    def tick_labels(self) -> tuple[np.ndarray, list[str]]:
        """Five values from ``low`` to ``high``; the ends read "≥ +0.42" / "≤ -0.42" when saturated."""
        ticks = np.linspace(self.low, self.high, 5)
        labels = [value_text(t) for t in ticks]
        if self.saturated:
            labels[-1] = f"≥ {labels[-1]}"
            if self.low < 0:
                labels[0] = f"≤ {labels[0]}"
        return ticks, labels

    def notes(self) -> list[str]:
        """The lines under the bar: the window when it is not the map's maximum, then ``note``."""
        lines = []
        if self.saturated:
            source = f"{self.window}; " if self.window else ""
            lines.append(f"window: {source}max {self.peak:.3g} (stronger values share the end colours)")
        if self.note:
            lines.append(self.note)
        return lines


@dataclass
class BarLayout:
    """The measured colour-bar column: its width and the height its texts need around the bar."""

    width: int
    top_lines: list = field(default_factory=list)
    bottom_lines: list = field(default_factory=list)
    note_lines: list = field(default_factory=list)
    tick_width: float = 0.0
    unit_width: float = 0.0
    line_px: float = 0.0
    note_px: float = 0.0
    min_bar: float = 0.0      # the shortest bar: room for its five tick labels and the rotated unit label

    def above(self) -> float:
        """Height (px) from the top of the column to the top of the bar."""
        return len(self.top_lines) * self.line_px + self.line_px / 2 + PAD

    def below(self) -> float:
        """Height (px) from the bottom of the bar to the bottom of the column's texts."""
        return self.line_px / 2 + PAD + len(self.bottom_lines) * self.line_px + \
            (PAD + len(self.note_lines) * self.note_px if self.note_lines else 0) + PAD

    def height(self) -> float:
        """The least column height: texts and the shortest bar."""
        return self.above() + self.min_bar + self.below()


@lru_cache(maxsize=4)
def _renderer(dpi: float):
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(10, 10, dpi)


def text_size(text: str, fontsize: float, dpi: float = 100) -> tuple[float, float]:
    """(width, height) in pixels of one line of ``text`` as matplotlib's Agg draws it."""
    from matplotlib.font_manager import FontProperties

    width, height, _ = _renderer(dpi).get_text_width_height_descent(text or " ", FontProperties(size=fontsize),
                                                                      ismath=False)
    return width, height


def wrap_pixels(text: str, fontsize: float, width: float, dpi: float = 100) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (a word longer than that is split)."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_size(candidate, fontsize, dpi)[0] <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while text_size(word, fontsize, dpi)[0] > width and len(word) > 1:  # split an unbreakable word
                cut = max(1, int(len(word) * width / text_size(word, fontsize, dpi)[0]))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def measure(bar: ColourBar, dpi: float = 100) -> BarLayout:
    """The column the bar needs: bar, tick labels and the rotated unit side by side; meanings and
    notes wrapped to the column."""
    _, labels = bar.tick_labels()
    tick_width = max(text_size(label, TICK_PT, dpi)[0] for label in labels)
    unit_width = text_size(bar.label, UNIT_PT, dpi)[1]  # rotated: its height is its width
    core = 10 + BAR_WIDTH + 3 + 3 + tick_width + PAD + unit_width + PAD
    wanted = max([text_size(s, MEANING_PT, dpi)[0] + 8 for s in (bar.top_meaning, bar.bottom_meaning) if s] or [0])
    width = int(np.ceil(max(core, MIN_COLUMN, min(wanted, MAX_COLUMN))))
    room = width - 8
    line_px = text_size("Ag", MEANING_PT, dpi)[1] * 1.25
    note_px = text_size("Ag", NOTE_PT, dpi)[1] * 1.25
    tick_height = max(text_size(label, TICK_PT, dpi)[1] for label in labels)
    min_bar = max(len(labels) * tick_height * 1.5, text_size(bar.label, UNIT_PT, dpi)[0] + 8)
    return BarLayout(width, wrap_pixels(bar.top_meaning, MEANING_PT, room, dpi) if bar.top_meaning else [],
                     wrap_pixels(bar.bottom_meaning, MEANING_PT, room, dpi) if bar.bottom_meaning else [],
                     [line for note in bar.notes() for line in wrap_pixels(note, NOTE_PT, room, dpi)],
                     tick_width, unit_width, line_px, note_px, min_bar)


def draw(figure, bar: ColourBar, geometry: BarLayout, x: float, top: float, height: float,
         size: tuple[int, int], text: Callable) -> tuple:
    """Draw ``bar`` in the column at ``x`` (px) from ``top`` over ``height`` px; returns the bar's box."""
    width, total = size
    x0 = x + 10
    bar_top = top + geometry.above()
    bar_h = max(height - geometry.above() - geometry.below(), geometry.min_bar)
    axes = figure.add_axes((x0 / width, 1 - (bar_top + bar_h) / total, BAR_WIDTH / width, bar_h / total))
    rgba = np.asarray(bar.rgba, dtype=float)
    colours = np.where(rgba[:, 3:4] > 0, rgba[:, :3], 0.18)  # hidden entries: dark grey
    axes.imshow(colours[::-1, None, :], aspect="auto", interpolation="nearest", extent=(0, 1, bar.low, bar.high))
    axes.set_xticks([])
    ticks, labels = bar.tick_labels()
    axes.set_yticks(ticks, labels=labels)
    axes.set_ylim(bar.low, bar.high)
    axes.yaxis.tick_right()
    axes.tick_params(colors=TEXT, labelsize=TICK_PT, length=3, pad=3)
    for spine in axes.spines.values():
        spine.set_color(TEXT)
    for index, line in enumerate(geometry.top_lines):
        text(x + 4, top + index * geometry.line_px, line, ha="left", va="top", fontsize=MEANING_PT)
    y = bar_top + bar_h + geometry.line_px / 2 + PAD
    for line in geometry.bottom_lines:
        text(x + 4, y, line, ha="left", va="top", fontsize=MEANING_PT)
        y += geometry.line_px
    unit_x = x0 + BAR_WIDTH + 6 + geometry.tick_width + PAD + geometry.unit_width / 2
    text(unit_x, bar_top + bar_h / 2, bar.label, ha="center", va="center", fontsize=UNIT_PT, rotation=90)
    y += PAD
    for line in geometry.note_lines:
        text(x + 4, y, line, ha="left", va="top", fontsize=NOTE_PT)
        y += geometry.note_px
    return int(x0), int(bar_top), int(x0 + BAR_WIDTH), int(bar_top + bar_h)


def value_text(value: float) -> str:
    """A tick value: 0, three significant digits, or scientific notation for very small or large values."""
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:+.3g}"

