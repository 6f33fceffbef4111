"""Every registered preset is documented (trial 3: the README's preset table listed 5 of 9) and the docs say how
to get ε everywhere (``preset=None``) from the command line, where ``--preset None`` is not a preset name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from NeuroRelevanceLib.engine.presets import PRESET_REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def _table_presets(path: Path) -> list[str]:
    """Preset names in the first column of the file's preset table (rows "| `name` ... |" after "| preset |")."""
    names, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("| preset |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            break
        match = re.match(r"\| `([^`]+)`", line) if inside else None
        if match:
            names.append(match.group(1))
    return names


@pytest.mark.parametrize("doc", ["README.md", "docs/engine.md"])
def test_every_registered_preset_is_in_the_preset_table(doc):
    listed = _table_presets(ROOT / doc)
    assert listed, f"{doc} has no preset table"
    missing = [name for name in PRESET_REGISTRY if name not in listed]
    unknown = [name for name in listed if name not in PRESET_REGISTRY and name != "None"]
    assert not missing and not unknown, f"{doc}: missing {missing}, not registered {unknown}"


def test_the_none_row_says_how_to_get_it_on_the_command_line():
    text = (ROOT / "docs" / "engine.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `None`"))
    assert "--preset epsilon" in row, row
