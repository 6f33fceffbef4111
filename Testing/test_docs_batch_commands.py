"""The batch commands the README and docs/batch.md show are accepted as written (trial 3: the group and
reference-group examples lacked ``--target``, which a classifier cohort with groups needs, so they were refused).

Each documented ``neurorelevance explain`` command goes through the real parser (nothing is run); a cohort table
(``*.csv``, which carries a ``group`` column in the docs) or ``--reference-group`` needs ``--target``, as
``batch.run._check_one_target`` demands. The Python examples of ``explain_cohort`` are held to the same rule.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from NeuroRelevanceLib.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "batch.md"]


def _shell_commands(path: Path) -> list[str]:
    """``neurorelevance explain`` lines of the file's bash blocks, continuations joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [line.split(" # ")[0].strip() for line in text.splitlines()
            if line.strip().startswith("neurorelevance explain ")]


def _python_calls(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if re.search(r"explain_cohort\(\s*\"", line)]


COMMANDS = [(p.name, c) for p in DOCS for c in _shell_commands(p)]


def test_the_docs_show_group_commands():
    assert sum("--reference-group" in c for _, c in COMMANDS) >= 2, COMMANDS
    assert any(_python_calls(p) for p in DOCS)


@pytest.mark.parametrize("where,command", COMMANDS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(COMMANDS)])
def test_documented_explain_commands_parse_and_name_a_target_when_compared_by_group(where, command):
    argv = shlex.split(command)[1:]
    args = build_parser(argv).parse_args(argv)   # raises SystemExit on a bad argument
    by_group = args.reference_group is not None or any(str(s).endswith(".csv") for s in args.inputs)
    if by_group:
        assert args.target is not None, f"{where}: '{command}' compares groups without --target"


def test_documented_python_calls_name_a_target_when_compared_by_group():
    for path in DOCS:
        for line in _python_calls(path):
            if "reference_group" in line or ".csv" in line:
                assert "target=" in line, f"{path.name}: {line.strip()}"
