"""How an evidence figure is worded at the precision its record supports (shared by the card's reason and the
plain line of :mod:`NeuroRelevanceLib.recommendation`).

Records keep :data:`DIGITS` significant digits (:func:`kept`; the bundled cards were written with four decimals); a
fold (mass accuracy / chance) is printed to one decimal as those figures support it (:func:`shown_fold`), and
within :data:`NEAR_BAR` of the bar as "at the bar within rounding" (:func:`at_bar`).
"""
from __future__ import annotations

import math
from decimal import Decimal

#: the recommended preset must put at least this multiple of chance into the true mask
FOLD = 5.0
#: a recorded score keeps this many significant digits (a chance of 0.0292887 keeps its fold to 1e-6)
DIGITS = 6
#: a fold whose recorded figures allow a value within this of the bar is "at the bar within rounding"
NEAR_BAR = 0.05


def kept(value: float) -> float:
    """``value`` to :data:`DIGITS` significant digits, as a record keeps it."""
    return float(f"{float(value):.{DIGITS}g}")


def _half_unit(value: float) -> float:
    """Half a unit in the last decimal a recorded figure keeps (0.00005 for 0.2123): how far the score may be.
    Every record keeps at least four decimals (older ones exactly four), so 0.035 counts as 0.0350."""
    exponent = Decimal(repr(float(value))).as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exponent), -4)


def fold_bounds(mass: float, chance: float) -> tuple[float, float]:
    """The smallest and largest mass / chance consistent with the recorded (rounded) mass and chance."""
    dm, dc = _half_unit(mass), _half_unit(chance)
    return (mass - dm) / (chance + dc), ((mass + dm) / (chance - dc) if chance > dc else math.inf)


def meets_bar(mass: float, chance: float, fold: float = FOLD) -> bool:
    """The bar: at least ``fold`` × chance of the positive relevance in the true mask (on the recorded figures)."""
    return mass >= fold * chance


def at_bar(mass: float, chance: float, fold: float = FOLD) -> bool:
    """Whether the recorded figures allow a fold within ``NEAR_BAR`` of the bar: then no fold is printed, only
    "at the bar within rounding" and the side the recorded figures put it on (``mass >= fold * chance``)."""
    low, high = fold_bounds(mass, chance)
    return low <= fold + NEAR_BAR and high >= fold - NEAR_BAR


def shown_fold(mass: float, chance: float) -> str:
    """mass / chance at one decimal as the recorded figures support it: "7.3", or "8.7–8.8" when their
    rounding leaves both possible. Outside :func:`at_bar` it is never on the other side of the bar."""
    low, high = fold_bounds(mass, chance)
    if math.isinf(high):
        return f"at least {low:.1f}"
    first, last = f"{low:.1f}", f"{high:.1f}"
    return first if first == last else f"{first}–{last}"


def figure(scores: dict, method: str, note: str = "",
           what: str = " of the positive relevance in the brain lies in the true mask") -> str:
    """"0.29 of the positive relevance in the brain lies in the true mask (5.2× chance 0.056, 4.4× on the
    weakest<note>)" for ``method`` of ``scores`` (an ``evidence.held_out``-like entry: ``chance`` and
    ``methods``). The fold is :func:`shown_fold`; near the bar (:func:`at_bar`) "at the 5× bar within rounding
    (below it on the recorded figures)" instead, so that a figure just below the bar never reads as it."""
    entry, chance = scores["methods"][method], scores["chance"]["mass_accuracy"]
    mass = entry["mass_accuracy"]
    weakest = entry.get("min_subject_fold")
    spread = "" if weakest is None else f", {weakest:.1f}× on the weakest"
    if at_bar(mass, chance):
        side = "meeting it" if meets_bar(mass, chance) else "below it"
        fold = f"at the {FOLD:g}× bar within rounding ({side} on the recorded figures), chance {chance:.3f}"
    else:
        fold = f"{shown_fold(mass, chance)}× chance {chance:.3f}"
    return f"{mass:.2f}{what} ({fold}{spread}{note})"
