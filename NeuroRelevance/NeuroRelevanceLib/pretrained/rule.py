"""The rule that chooses a card's recommended preset from one set of scores (``pretrained.evidence``'s docstring):
:func:`decide` returns the whole decision (:class:`Choice`: the preset, which presets conserve, which met the bar,
which were left out for not conserving, and whether the bar was met), which the card's reason (:func:`why_text`,
:func:`choose`) and the plain line (``recommendation``) both word, so they cannot disagree.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .figures import FOLD, meets_bar, shown_fold

#: a preset whose median conservation error exceeds this is not recommended (its maps do not add up to the
#: explained value: not a decomposition of the decision), unless no preset conserves
MAX_CONSERVATION_ERROR = 1.0
RULE = (f"among presets with median conservation error <= {MAX_CONSERVATION_ERROR:g} (all, if none) and mean "
        f"mass_accuracy >= {FOLD:g} x mean chance over the development subjects, the smallest conservation error; "
        "else the highest mass_accuracy among those that conserve (min_subject_fold: the weakest subject's "
        "mass_accuracy / chance)")


def conserves(error: float) -> bool:
    """Whether a preset's (median) conservation error lets the rule recommend it."""
    return error <= MAX_CONSERVATION_ERROR


class Choice(NamedTuple):
    """What the rule decided on one set of scores, for the reason (:func:`choose`) and the plain line
    (``recommendation``) alike."""

    preset: str
    chance: float
    rows: dict[str, tuple[float, float]]   # preset -> (mean mass accuracy, median conservation error)
    conserving: frozenset[str]             # error <= MAX_CONSERVATION_ERROR (every preset when none does)
    met_bar: frozenset[str]                # conserving presets at or above the bar
    left_out: tuple[str, ...]              # at or above the bar, but not conserving
    kind: str                              # "met_bar": the best conserver among met_bar; "closest": most mass

    @property
    def none_conserve(self) -> bool:
        """No preset conserves, so the rule fell back on all of them."""
        return not any(conserves(cons) for _, cons in self.rows.values())


def decide(rows: Mapping[str, tuple[float, float]], chance: float, fold: float = FOLD) -> Choice:
    """The rule of the module docstring on ``rows`` (preset -> (mass accuracy, conservation error))."""
    rows = dict(rows)
    conserving = {p: v for p, v in rows.items() if conserves(v[1])} or rows
    good = {p: v for p, v in conserving.items() if meets_bar(v[0], chance, fold)}
    if good:
        preset, kind = min(good, key=lambda p: (good[p][1], -good[p][0])), "met_bar"
    else:
        preset, kind = max(conserving, key=lambda p: conserving[p][0]), "closest"
    left_out = tuple(p for p, v in rows.items() if p not in conserving and meets_bar(v[0], chance, fold))
    return Choice(preset, chance, rows, frozenset(conserving), frozenset(good), left_out, kind)


def decide_scores(table: Any, extra: dict, fold: float = FOLD) -> Choice:
    """:func:`decide` on one set of scores (``score_card``'s table and extra)."""
    rows = {m[4:]: (float(table.loc[m, "mass_accuracy"]), float(extra[m]["conservation_error"]))
            for m in extra if m.startswith("lrp:")}
    return decide(rows, float(table.loc["chance", "mass_accuracy"]), fold)


def why_text(choice: Choice, fold: float = FOLD) -> str:
    """The rule's why in the reason's words."""
    rows, chance = choice.rows, choice.chance
    if choice.kind == "met_bar":
        why = (f"of the presets that put at least {fold:g}× chance of their positive relevance in the true mask, "
               f"it conserves best")
    else:
        which = "preset that conserves" if len(choice.conserving) < len(rows) else "preset"
        why = f"no {which} reaches {fold:g}× chance; it puts the most positive relevance in the true mask"
    left_out = [f"{p} ({shown_fold(rows[p][0], chance)}× chance) does not conserve (error {rows[p][1]:.2g} > "
                f"{MAX_CONSERVATION_ERROR:g}: its map does not add up to the explained value), so it is not "
                f"recommended" for p in choice.left_out]
    if left_out:
        why += "; " + "; ".join(left_out)
    others = ", ".join(f"{p} {v[0]:.2f}" for p, v in sorted(rows.items(), key=lambda kv: -kv[1][0])
                       if p != choice.preset)
    return f"{why} (others: {others})"


def choose(table: Any, extra: dict, fold: float = FOLD) -> tuple[str, str]:
    """(preset, why in words) by the rule of the module docstring, from ONE set of scores."""
    choice = decide_scores(table, extra, fold)
    return choice.preset, why_text(choice, fold)


def decide_recorded(development: Mapping, fold: float = FOLD) -> Choice:
    """:func:`decide` on a recorded ``evidence.development`` entry (its rounded figures, no rescoring)."""
    rows = {m[4:]: (float(v["mass_accuracy"]), float(v["conservation_error"]))
            for m, v in development["methods"].items() if m.startswith("lrp:")}
    return decide(rows, float(development["chance"]["mass_accuracy"]), fold)


def choose_recorded(development: Mapping, fold: float = FOLD) -> tuple[str, str]:
    """:func:`choose` on a recorded ``evidence.development`` entry (its rounded figures, no rescoring)."""
    choice = decide_recorded(development, fold)
    return choice.preset, why_text(choice, fold)
