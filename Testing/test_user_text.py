"""What users read names the source papers as docs/glossary.md does, never by the project's internal
"seed 00x" numbers, and carries no development notes ("once wired", "quoted in the issues")."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(r"\bseed[- ]?00[0-4]\b|\bonce wired\b|quoted in the issues|\bdemo models land\b", re.I)


def _help_texts() -> dict[str, str]:
    from NeuroRelevanceLib.cli import build_parser

    texts = {"neurorelevance": build_parser([]).format_help()}
    for command in ("explain", "regions", "cohort", "compare", "demo"):
        parser = build_parser([command])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        texts[command] = sub.choices[command].format_help()
    return texts


def _readme_outside_generated_tables() -> str:
    text = (ROOT / "README.md").read_text()
    return re.sub(r"<!-- BENCH_START -->.*?<!-- BENCH_END -->", "", text, flags=re.S)  # written by a benchmark


@pytest.mark.parametrize("where", ["cli", "slicer", "web", "readme", "docs/methods.md", "smoke"])
def test_no_internal_numbers_or_development_notes(where):
    if where == "cli":
        texts = _help_texts()
    elif where == "slicer":
        texts = {p.name: p.read_text() for p in (ROOT / "NeuroRelevance" / "Resources" / "UI").glob("*.ui")}
        texts["NeuroRelevance.py"] = (ROOT / "NeuroRelevance" / "NeuroRelevance.py").read_text()
    elif where == "web":
        texts = {p.name: p.read_text() for p in (ROOT / "NeuroRelevance" / "NeuroRelevanceLib" / "web").glob("*.py")}
    elif where == "readme":
        texts = {"README.md": _readme_outside_generated_tables()}
    elif where == "smoke":
        texts = {"smoke.py": (ROOT / "NeuroRelevance" / "NeuroRelevanceLib" / "smoke.py").read_text()}
    else:
        texts = {where: (ROOT / where).read_text()}
    found = [f"{name}: {m.group(0)!r}" for name, text in texts.items() for m in INTERNAL.finditer(text)]
    assert found == []


def test_the_check_can_fail():
    assert INTERNAL.search("Tjoa's filters (seed 001)") and INTERNAL.search("the seed-003 ResNet")
    assert not INTERNAL.search("seed=0, the random seed 0 of the cohort")
