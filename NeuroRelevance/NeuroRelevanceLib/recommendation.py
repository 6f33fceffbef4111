"""Why a model card recommends its preset: a plain line for every front end, and the technical details.

:func:`plain_text` builds the line from the card's structured ``evidence`` (:mod:`.pretrained.evidence`
writes it), never from its free-text reason, in words a radiologist can follow:

    on 32 new synthetic scans from a fresh cohort it had never seen, 29 % of its highlighting inside the brain
    fell where the effect was planted, on average 5.2 times the 5.6 % a random map would put there (4.4 times on
    the weakest scan); that meets the bar of 5 times. It was chosen on 29 other scans (5.2 times there): of the
    presets that met the bar there, its explanation's total came closest to the model's output (13 % off on a
    typical scan).

The figures are the evidence's, for the recommended preset: "highlighting inside the brain" is the positive
relevance in the brain, "where the effect was planted" the card's ground-truth mask (``mass_accuracy``), "a
random map" the mask's share of the brain (``chance``), "times" their ratio (one decimal, as the recorded figures
support it: :func:`.pretrained.figures.shown_fold`; within 0.05 of the bar "at the bar within rounding" and the
side the recorded figures put it on, as :func:`.pretrained.figures.at_bar` decides), "the weakest scan" the
subject with the smallest ratio (``min_subject_fold``) and "the bar" ``FOLD``; "new synthetic scans from a fresh
cohort" are the fresh held-out cohort, "other scans" the development subjects the preset was chosen on; "off" is
the median conservation error. The why is :func:`.pretrained.rule.decide_recorded`'s decision on the
development scores (the one the card's reason words)
("the only preset that met the bar" when it was), and a preset that met the bar but was left out because its
explanation does not add up (conservation error above ``MAX_CONSERVATION_ERROR``) is named.
A card with a reason but no evidence shows its reason; evidence that does not score the preset, or cannot be
read, is said so, with no figure. :func:`details_text` keeps the technical version (tooltip, ``compare``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

PARTS = {"held_out": "Fresh held-out cohort", "development": "Chosen on the development subjects"}


class Unreadable(ValueError):
    """The card's evidence lacks a figure the line needs, or holds something that is not one."""


class Figures(NamedTuple):
    """One part of the evidence (held-out or development) for one preset."""

    n_subjects: int
    mass: float            # share of the positive relevance in the brain that lies in the mask
    chance: float          # the mask's share of the brain: what an even map puts there
    conservation: float | None
    weakest: float | None = None   # the weakest subject's mass / its chance (min_subject_fold)

    @property
    def fold(self) -> float:
        return self.mass / self.chance       # as figures.figure words it

    @property
    def meets_bar(self) -> bool:
        from .pretrained.figures import meets_bar

        return meets_bar(self.mass, self.chance)      # as the rule and the card's reason decide it


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unreadable(f"{what} is {'missing' if value is None else 'not a number'}")
    return float(value)


def _object(value: Any, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise Unreadable(f"{what} is {'missing' if value is None else 'not an object'}")
    return value


def figures(evidence: Mapping, part: str, method: str) -> Figures | None:
    """``method``'s figures in ``evidence[part]``; None when that part is absent or does not score it."""
    if evidence.get(part) is None:
        return None
    scores = _object(evidence[part], part)
    entry = _object(scores.get("methods"), f"{part}.methods").get(method)
    if entry is None:
        return None
    entry = _object(entry, f"{part}.methods.{method}")
    chance = _number(_object(scores.get("chance"), f"{part}.chance").get("mass_accuracy"),
                     f"{part}.chance.mass_accuracy")
    if chance <= 0:
        raise Unreadable(f"{part}.chance.mass_accuracy is not above 0")
    n = _number(scores.get("n_subjects"), f"{part}.n_subjects")
    cons, weakest = entry.get("conservation_error"), entry.get("min_subject_fold")
    return Figures(int(n), _number(entry.get("mass_accuracy"), f"{part}.methods.{method}.mass_accuracy"), chance,
                   None if cons is None else _number(cons, f"{part}.methods.{method}.conservation_error"),
                   None if weakest is None else _number(weakest, f"{part}.methods.{method}.min_subject_fold"))


def percent(share: float) -> str:
    """28 %, 5.7 %: whole per cent from 10 % up, one decimal below."""
    return f"{100 * share:.0f} %" if share >= 0.1 else f"{100 * share:.1f} %"


def times(figs: Figures) -> str:
    """"5.2 times" (one decimal, as the recorded figures support it), or, within 0.05 of the bar, "about 5 times"
    (:func:`.pretrained.figures.at_bar`: the recorded figures cannot tell the fold from the bar)."""
    from .pretrained.figures import FOLD, at_bar, shown_fold

    if at_bar(figs.mass, figs.chance):
        return f"about {FOLD:g} times"
    return f"{shown_fold(figs.mass, figs.chance)} times"


def verdict(figs: Figures) -> str:
    """"meets the bar of 5 times" / "is below the bar of 5 times", or near it "is at the bar of 5 times within
    rounding, just below it on the recorded figures"; the side is always evidence's own test (``meets_bar``)."""
    from .pretrained.figures import FOLD, at_bar

    if at_bar(figs.mass, figs.chance):
        side = "just meeting it" if figs.meets_bar else "just below it"
        return f"is at the bar of {FOLD:g} times within rounding, {side} on the recorded figures"
    return f"{'meets' if figs.meets_bar else 'is below'} the bar of {FOLD:g} times"


def _why(development: Mapping, preset: str, dev: Figures) -> str:
    """The rule's why in words (the preset met the bar and adds up best, or came closest), and any preset
    that met the bar but was left out because its explanation does not add up; "" if the scores cannot say.
    The decision is :func:`.pretrained.rule.decide_recorded`'s, the same the card's reason words."""
    from .pretrained.figures import shown_fold
    from .pretrained.rule import decide_recorded

    try:
        _number(development["chance"]["mass_accuracy"], "development chance")
        for m, v in development["methods"].items():
            if m.startswith("lrp:"):
                _number(v["mass_accuracy"], m), _number(v["conservation_error"], m)
        choice = decide_recorded(development)
    except (Unreadable, KeyError, TypeError, AttributeError, ValueError):
        return ""
    picked, rows, chance, left_out = choice.preset, choice.rows, choice.chance, list(choice.left_out)
    if picked != preset:
        why = f"our rule would pick {picked} on those scans"
    elif choice.kind == "met_bar" and choice.met_bar == {preset}:
        only = "of the presets whose explanation adds up to the model's output, it was the only one" if left_out \
            else "it was the only preset"
        why = (f"{only} that met the bar there (its explanation's total is {percent(rows[preset][1])} off the "
               "model's output on a typical scan)")
    elif choice.kind == "met_bar":
        why = ("of the presets that met the bar there, its explanation's total came closest to the model's output "
               f"({percent(rows[preset][1])} off on a typical scan)")
    elif not choice.none_conserve and len(choice.conserving) < len(rows):
        why = "no preset whose explanation adds up to the model's output met the bar there; of those, it came closest"
    else:
        why = "no preset met the bar there; it came closest"
    if left_out:
        folds = " and ".join(shown_fold(rows[p][0], chance) for p in left_out)
        why += (f"; {' and '.join(left_out)} met the bar too ({folds} times) but "
                f"{'was' if len(left_out) == 1 else 'were'} left out: "
                f"{'its explanation does' if len(left_out) == 1 else 'their explanations do'} not add up to the "
                "model's output")
    return why


def _from_evidence(evidence: Any, preset: str) -> str:
    evidence = _object(evidence, "evidence")
    method = f"lrp:{preset}"
    held, dev = figures(evidence, "held_out", method), figures(evidence, "development", method)
    if held is None and dev is None:
        scored = sorted({m[4:] for part in PARTS if isinstance(evidence.get(part), Mapping)
                         and isinstance(evidence[part].get("methods"), Mapping)
                         for m in evidence[part]["methods"] if m.startswith("lrp:")})
        return (f"the card's evidence does not score {preset} (it scores {', '.join(scored) or 'no preset'}), "
                "so it gives no figures for it")
    if held is None:
        first = "the card gives no figure for it on new scans it had never seen"
    else:
        weakest = "" if held.weakest is None else f" ({held.weakest:.1f} times on the weakest scan)"
        first = (f"on {held.n_subjects} new synthetic scans from a fresh cohort it had never seen, "
                 f"{percent(held.mass)} of its highlighting inside the brain fell where the effect was planted, "
                 f"on average {times(held)} the {percent(held.chance)} a random map would put there{weakest}; "
                 f"that {verdict(held)}")
    if dev is None:
        return f"{first}. The card does not say what it was chosen on."
    why = _why(evidence["development"], preset, dev)
    return (f"{first}. It was chosen on {dev.n_subjects} other scans ({times(dev)} there)"
            f"{': ' + why if why else ''}.")


def plain_text(card: Any) -> str:
    """"Recommended preset <p>: <why, in plain words>" from the card's ``evidence`` (see the module docstring);
    the card's reason when it has no evidence; "the card gives no evidence for it" when it has neither."""
    preset = card.recommended_preset
    head = f"Recommended preset {preset}: "
    evidence = getattr(card, "evidence", None)
    if not evidence:
        reason = (getattr(card, "recommendation_reason", "") or "").strip()
        if not reason:
            return head + "the card gives no evidence for it"
        return head + (reason[len(preset) + 2:] if reason.startswith(f"{preset}: ") else reason)
    try:
        return head + _from_evidence(evidence, preset)
    except Unreadable as exc:
        return head + f"the card's evidence cannot be read ({exc}), so it gives no figures for it"


def _part_line(evidence: Mapping, part: str, method: str) -> str:
    from .pretrained.figures import figure

    scores: Any = evidence.get(part)
    try:
        if figures(evidence, part, method) is None:
            return ""
        entry = scores["methods"][method]
        seed = scores.get("cohort_seed")
        ceiling = (scores.get("oracle_sigma_1") or {}).get("mass_accuracy")
        cons = entry.get("conservation_error")
        return (f"{PARTS[part]} ({scores['n_subjects']} subjects{'' if seed is None else f', cohort seed {seed}'}), "
                f"{method}: {figure(scores, method)}"
                f"{'' if cons is None else f', conservation error {cons:.2g}'}"
                f"{'' if ceiling is None else f'; ceiling (true change map blurred by 1 voxel) {ceiling:.2f}'}")
    except (Unreadable, KeyError, TypeError, ValueError, AttributeError):
        return f"{PARTS[part]}: the card's figures cannot be read"


def details_text(card: Any) -> str:
    """The technical version (for a tooltip or a verbose listing): each part's figure as
    :func:`.pretrained.figures.figure` words it, with conservation error and ceiling, the card's reason,
    the rule and the protocol; the reason alone for a card without evidence."""
    reason = (getattr(card, "recommendation_reason", "") or "").strip()
    evidence = getattr(card, "evidence", None)
    if not isinstance(evidence, Mapping) or not evidence:
        return reason
    method = f"lrp:{card.recommended_preset}"
    lines = [_part_line(evidence, part, method) for part in PARTS]
    lines.append(reason)
    lines += [f"{label}: {evidence[key]}" for key, label in (("rule", "Rule"), ("protocol", "Protocol"))
              if isinstance(evidence.get(key), str)]
    return "\n".join(line for line in lines if line)
