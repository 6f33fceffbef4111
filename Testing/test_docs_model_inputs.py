"""What the docs say about model files and input preprocessing matches the code (trial 7 F12)."""
import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _trust_table() -> str:
    text = (ROOT / "docs" / "security.md").read_text()
    start = text.index('### Who can say "trusted"')
    return text[start:text.index("###", start + 10)]


def test_every_command_that_opens_a_model_file_is_in_the_trust_table():
    from NeuroRelevanceLib.cli import build_parser

    table = _trust_table()
    commands = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                model = [a for a in sub._actions if "--model" in a.option_strings]
                if model and model[0].choices is None:  # a path, not the name of a bundled demo model
                    commands.append(name)
    assert {"explain", "compare", "cohort"} <= set(commands)
    missing = [name for name in commands if f"neurorelevance {name}" not in table]
    assert not missing, f"docs/security.md 'Who can say trusted' leaves out {missing}"


def test_pretrained_docs_say_normalisation_runs_on_the_scan_grid_before_resampling():
    from NeuroRelevanceLib import preprocessing

    assert "Normalise on the scan's own grid, then resample" in preprocessing.normalize_then_resample.__doc__
    row = next(line for line in (ROOT / "docs" / "pretrained.md").read_text().splitlines()
               if line.startswith("| `input.normalization`"))
    assert "after resampling" not in row and "before resampling" in row


def test_batch_docs_say_which_architectures_the_command_line_builds():
    text = (ROOT / "docs" / "batch.md").read_text()
    assert "NeuroRelevanceLib.nets" in text and "trusted=True" in text
