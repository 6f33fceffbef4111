"""The fresh held-out cohort is scored once: a log of its scorings in the card, and the refusal of a second one.

A demo card's ``training.held_out_cohort.scored`` lists every scoring of a fresh cohort: ``cohort_seed``,
``date`` (UTC), ``commit`` (the checkout's HEAD, "+dirty" with uncommitted changes; for the first, older entries
the commit that recorded the scores, ``commit_note`` says so), ``presets`` and ``other_methods`` scored,
``script`` (the command) and ``why``. ``benchmarks/bench_groundtruth.py`` logs a scoring before it prints or
records anything (:func:`log_scoring`) and refuses to score a seed the log already names (:func:`refuse_rescoring`),
alone (``--split held_out``) or by default. Only an explicit ``--rescore-held-out "<why>"`` scores it again; then
the seed is retired with that why (:func:`retire_fresh`: ``training.held_out_cohort.retired``, which
``heldout.cohort_source`` refuses as the fresh cohort), and a new seed must be given before the next scoring.
"""
from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

from .heldout import card_json


class HeldOutSpent(ValueError):
    """The card's fresh held-out cohort has been scored already."""


def _write(card_path: str | Path, card: dict) -> None:
    Path(card_path).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")


def _fresh(card: dict, name: str) -> dict:
    fresh = (card.get("training") or {}).get("held_out_cohort")
    if not fresh:
        raise ValueError(f"{name} records no fresh held-out cohort (training.held_out_cohort)")
    return fresh


def scorings(card_path: str | Path) -> list[dict[str, Any]]:
    """The logged scorings of the card's current fresh cohort (entries of ``scored`` with its seed)."""
    fresh = _fresh(card_json(card_path), Path(card_path).name)
    return [e for e in fresh.get("scored") or [] if int(e.get("cohort_seed", -1)) == int(fresh["seed"])]


def refuse_rescoring(card_path: str | Path) -> None:
    """Raise :class:`HeldOutSpent` (naming when, at which commit and by what it was scored, and the way out) if the
    card's fresh cohort has been scored already."""
    done = scorings(card_path)
    if not done:
        return
    name = Path(card_path).name
    seed = int(done[0]["cohort_seed"])
    when = "; ".join(f"{e.get('date', '?')} at commit {e.get('commit', '?')} by {e.get('script', '?')}" for e in done)
    raise HeldOutSpent(
        f"{name}: the fresh held-out cohort (seed {seed}) has been scored already ({when}); it is scored once, so its "
        f"figures are the card's evidence.held_out and it is not scored again. To score it anyway, give "
        f'--rescore-held-out "<why>": it is then retired with that why (training.held_out_cohort.retired) and the '
        f"card needs a new fresh seed before its next evidence")


def checkout_commit(root: str | Path) -> str:
    """The short HEAD of the git checkout at ``root`` ("+dirty" with uncommitted changes), or "unknown"."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def log_scoring(card_path: str | Path, *, methods: list[str], script: str, commit: str, why: str,
                date: str | None = None) -> dict[str, Any]:
    """Append a scoring of the card's fresh cohort (``methods``: "lrp:<preset>" and others) to its log; the
    entry."""
    card = card_json(card_path)
    fresh = _fresh(card, Path(card_path).name)
    entry = {"cohort_seed": int(fresh["seed"]),
             "date": date or datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
             "commit": commit, "presets": [m[4:] for m in methods if m.startswith("lrp:")],
             "other_methods": [m for m in methods if not m.startswith("lrp:")], "script": script, "why": why}
    fresh.setdefault("scored", []).append(entry)
    _write(card_path, card)
    return entry


def retire_fresh(card_path: str | Path, why: str) -> int:
    """Move the card's fresh cohort seed to ``training.held_out_cohort.retired`` with ``why``; the seed. The card's
    ``held_out_cohort.seed`` is left as it is, so the fresh cohort is refused until a new seed is given."""
    if not why.strip():
        raise ValueError("a retired cohort needs a why")
    card = card_json(card_path)
    fresh = _fresh(card, Path(card_path).name)
    seed = int(fresh["seed"])
    retired = fresh.setdefault("retired", [])
    if all(int(r["seed"]) != seed for r in retired):
        retired.append({"seed": seed, "why": why})
    _write(card_path, card)
    return seed


def next_seed(card_path: str | Path) -> int:
    """A seed no cohort of the card has used: one past the training, fresh and retired seeds."""
    training = card_json(card_path)["training"]
    fresh = training["held_out_cohort"]
    used = [int(training["cohort"]["seed"]), int(fresh["seed"])] + [int(r["seed"]) for r in fresh.get("retired", [])]
    return max(used) + 1
