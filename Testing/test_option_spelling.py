"""A refusal names an option the way the user typed it: a keyword (``preset='epsilon'``) in the console, the
library and the Slicer logic, a flag (``--preset epsilon``) on the command line; never the other front end's.

Trial finding: ``RelevanceLogic.run(..., preset="epsilon", alpha=3)`` answered "--alpha (alpha=) 3 has no
effect ...", quoting a command-line flag to a console user. The message text is written once
(``vocabulary.OptionError``); each front end only chooses the spelling.
"""
from __future__ import annotations

import re

import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import scan_volume, tiny_card
from scene_census import census

pytestmark = pytest.mark.usefixtures("one_torch_thread")
pytest.importorskip("slicer")

#: a command-line flag ("--alpha") and a keyword as the library spells it ("alpha=")
FLAG = re.compile(r"(?<![\w-])--[a-z]")
KEYWORD = re.compile(r"\b[a-z_]+=")

#: options without effect: (keywords, the same mistake as flags, the keyword and the flag the refusal names)
MISTAKES = [
    (dict(preset="epsilon", alpha=3.0), ["--preset", "epsilon", "--alpha", "3"], "alpha=3.0", "--alpha 3"),
    (dict(preset="deep-taylor", epsilon=0.1), ["--preset", "deep-taylor", "--epsilon", "0.1"],
     "epsilon=0.1", "--epsilon 0.1"),
    (dict(preset="epsilon-plus", gamma=0.5), ["--preset", "epsilon-plus", "--gamma", "0.5"],
     "gamma=0.5", "--gamma 0.5"),
    (dict(filter_range=(0.2, 0.5)), ["--filter-range", "0.2", "0.5"], "filter_range=(0.2, 0.5)",
     "--filter-range 0.2 0.5"),
    (dict(filter_placement="every-layer"), ["--filter-placement", "every-layer"],
     "filter_placement='every-layer'", "--filter-placement every-layer"),
    (dict(method="gradient", preset="deep-taylor"), ["--method", "gradient", "--preset", "deep-taylor"],
     "preset='deep-taylor'", "--preset deep-taylor"),
    (dict(method="gradient", alpha=2.0), ["--method", "gradient", "--alpha", "2"], "alpha=2.0", "--alpha 2"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(tiny_card(tmp_path_factory.mktemp("model"), preset="alpha1-beta0"), device="cpu")


@pytest.mark.parametrize("keywords, flags, keyword, flag", MISTAKES)
def test_the_slicer_logic_names_the_keyword_not_the_flag(scene, loaded, keywords, flags, keyword, flag):
    volume = scan_volume(scene)
    before = census(scene)
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([volume], loaded, **keywords)
    message = str(info.value)
    assert keyword in message and "no effect" in message, message
    assert not FLAG.search(message), message
    assert census(scene) == before


def test_the_logic_names_custom_rules_and_the_filter_choices_as_keywords(scene, loaded):
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([scan_volume(scene)], loaded, preset="alpha2-beta1", alpha=3.0, rules={})
    assert "rules=" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([scan_volume(scene)], loaded, filter_range=(0.2, 0.5))
    assert "filter='pass'" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)


@pytest.mark.parametrize("keywords, flags, keyword, flag", MISTAKES)
def test_the_command_line_names_the_flag_not_the_keyword(tmp_path, capsys, keywords, flags, keyword, flag):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main

    files = make_inputs(tmp_path / "in")
    code = main(["explain", str(files.scans[0]), "--model", str(files.classifier), "--output",
                 str(tmp_path / "e"), "--quiet", "--atlas", "none", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert flag in err and ("no effect" in err or "does not use it" in err), err
    assert not KEYWORD.search(err), err
    assert not (tmp_path / "e").exists()


def test_the_command_line_names_the_filter_choices_as_flags(tmp_path, capsys):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main

    files = make_inputs(tmp_path / "in")
    main(["explain", str(files.scans[0]), "--model", str(files.classifier), "--output", str(tmp_path / "e"),
          "--quiet", "--atlas", "none", "--filter-range", "0.2", "0.5"])
    err = capsys.readouterr().err
    assert "--filter pass" in err and not KEYWORD.search(err), err


@pytest.mark.parametrize("keywords, flags, keyword, flag", MISTAKES)
def test_the_library_cohort_run_names_the_keyword_not_the_flag(tmp_path, keywords, flags, keyword, flag):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.batch import explain_cohort

    files = make_inputs(tmp_path / "in")
    with pytest.raises(InputError) as info:
        explain_cohort([str(files.scans[0])], files.classifier, tmp_path / "e", atlases=(), png=False,
                       device="cpu", **keywords)
    message = str(info.value)
    assert keyword in message and not FLAG.search(message), message
    assert not (tmp_path / "e").exists()


def test_the_library_explain_names_the_keyword(loaded):
    import torch

    from NeuroRelevanceLib import explain

    with pytest.raises(InputError) as info:
        explain(loaded.model, torch.zeros(1, 1, 16, 16, 16), method="gradient", preset="deep-taylor")
    assert "preset=" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
