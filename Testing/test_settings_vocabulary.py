"""One settings vocabulary: the Slicer panel, the web page, the command line and the console defaults all
agree with ``vocabulary.OPTIONS`` (ranges, defaults, choices), and the check fails when one of them drifts."""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from NeuroRelevanceLib import panel, vocabulary
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.vocabulary import OPTIONS

MODULE = Path(__file__).resolve().parents[1] / "NeuroRelevance"
UI = MODULE / "Resources" / "UI" / "NeuroRelevance.ui"
WIDGET_CODE = MODULE / "NeuroRelevance.py"
WEB_UI = MODULE / "NeuroRelevanceLib" / "web" / "ui.py"


def ui_disagreements(ui_text: str) -> list[str]:
    """Where the .ui file's spin boxes / sliders / combo items differ from the vocabulary."""
    problems = []
    root = ET.fromstring(ui_text)
    for widget in root.iter("widget"):
        bound = {p.get("name"): p for p in widget.findall("property")}.get("SlicerParameterName")
        if bound is None:
            continue
        name = next((o.name for o in OPTIONS.values() if o.slicer == bound.findtext("string")), None)
        if name is None:
            continue
        opt = OPTIONS[name]
        props = {p.get("name"): p for p in widget.findall("property")}
        for key, want in (("minimum", opt.low), ("maximum", opt.high), ("value", opt.panel_default)):
            if key in props and want is not None and not isinstance(want, str):
                got = float(props[key].findtext("double") or props[key].findtext("number"))
                if got != float(want):
                    problems.append(f"{widget.get('name')}.{key} = {got:g}, vocabulary {name} says {want:g}")
        if widget.findall("item"):
            problems.append(f"{widget.get('name')} lists items by hand; they come from the vocabulary")
    return problems


def cli_disagreements(parser: argparse.ArgumentParser) -> list[str]:
    """Where the flags of ``parser`` differ from the vocabulary (choices, default, range)."""
    problems = []
    for action in parser._actions:
        opt = next((o for o in OPTIONS.values() if o.flag and o.flag in action.option_strings), None)
        if opt is None:
            continue
        if opt.choices is not None and action.choices is not None \
                and set(action.choices) != set(opt.items):
            problems.append(f"{opt.flag} choices {sorted(action.choices)} != {sorted(opt.items)}")
        default = action.default
        if isinstance(default, list):
            default = tuple(default)
        if default is not None and default != opt.library_default:
            problems.append(f"{opt.flag} default {default!r} != {opt.library_default!r}")
        if opt.low is not None:
            convert = action.type
            low, high = opt.bounds
            for inside in (low, high if math.isfinite(high) else low + 1):
                try:
                    convert(repr(inside))
                except argparse.ArgumentTypeError:
                    problems.append(f"{opt.flag} rejects {inside:g}, inside [{low:g}, {high:g}]")
            for outside in (low - 1e-3, high * 1.001 + 1e-3):
                if not math.isfinite(outside):
                    continue
                try:
                    convert(repr(outside))
                    problems.append(f"{opt.flag} accepts {outside:g}, outside [{low:g}, {high:g}]")
                except argparse.ArgumentTypeError:
                    pass
    return problems


def _explain_parser() -> argparse.ArgumentParser:
    from NeuroRelevanceLib.cli import build_parser

    parser = build_parser(["explain"])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["explain"]


def test_slicer_ui_agrees_with_the_vocabulary():
    assert ui_disagreements(UI.read_text()) == []


def test_ui_check_fails_when_a_range_drifts():
    text = UI.read_text()
    drifted = re.sub(r"(<widget class=\"QDoubleSpinBox\" name=\"epsilonSpinBox\">.*?<property name=\"maximum\">"
                     r"\s*<double>)[^<]*", r"\g<1>5.0", text, count=1, flags=re.S)
    assert drifted != text
    assert any("epsilonSpinBox.maximum" in p for p in ui_disagreements(drifted))


def test_slicer_module_takes_every_range_default_and_choice_from_the_vocabulary():
    code = WIDGET_CODE.read_text()
    assert not re.search(r"WithinRange\(\s*[-\d.]", code), "a range is written by hand in NeuroRelevance.py"
    assert not re.search(r"Choice\(\s*[\[\"(]", code), "choices are written by hand in NeuroRelevance.py"
    for name, opt in OPTIONS.items():
        if opt.slicer:
            assert re.search(rf"\b{opt.slicer}: .*= (_shown|vocabulary)", code), \
                f"parameter {opt.slicer} does not start from the vocabulary"


def test_command_line_agrees_with_the_vocabulary():
    assert cli_disagreements(_explain_parser()) == []


def test_command_line_check_fails_when_a_range_drifts():
    from NeuroRelevanceLib.cli_checks import number

    parser = argparse.ArgumentParser()
    parser.add_argument("--epsilon", type=number(0.0, 1e6))
    parser.add_argument("--filter", choices=("pass",))
    problems = cli_disagreements(parser)
    assert any("--epsilon accepts" in p for p in problems) and any("--filter choices" in p for p in problems)


# the flags of regions, cohort, compare and demo (and labels, help texts): Testing/test_option_agreement.py


def test_console_defaults_are_the_vocabulary_defaults():
    from NeuroRelevanceLib.jobs import Settings

    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name, opt in OPTIONS.items():
        if name in fields and fields[name].default is not dataclasses.MISSING:
            assert fields[name].default == opt.library_default, name


def test_panel_choices_are_the_vocabulary_choices():
    assert panel.METHODS == OPTIONS["method"].items
    assert panel.FILTERS == OPTIONS["filter"].items
    assert panel.PLACEMENTS == OPTIONS["filter_placement"].items
    assert panel.DEVICES == OPTIONS["device"].items
    assert panel.PRESETS == OPTIONS["preset"].items


def test_methods_offered_are_methods_the_library_runs():
    from NeuroRelevanceLib.explanation.dispatch import METHODS

    assert set(OPTIONS["method"].items) <= set(METHODS)


@pytest.mark.parametrize("name", [n for n, o in OPTIONS.items() if o.low is not None and o.slicer])
def test_web_page_accepts_exactly_the_vocabulary_range(name):
    from NeuroRelevanceLib.web.values import page_values

    opt = OPTIONS[name]
    from NeuroRelevanceLib.web.defaults import option_state

    state = {**option_state(), "atlas": "none"}
    low, high = opt.bounds
    for inside in (low, high):
        page_values(SimpleNamespace(**{**state, name: inside}), atlases=["none"], targets=["predicted"])
    for outside in (low - 1e-3, high * 1.001 + 1e-3):
        with pytest.raises(InputError):
            page_values(SimpleNamespace(**{**state, name: outside}), atlases=["none"], targets=["predicted"])


def test_web_widgets_write_no_range_by_hand():
    code = WEB_UI.read_text()
    assert not re.search(r"\b(min|max)=[\d.]", code), "a widget range is written by hand in web/ui.py"


def test_web_start_values_are_the_vocabulary_defaults():
    from NeuroRelevanceLib.web.defaults import option_state

    state = option_state()
    for name, opt in OPTIONS.items():
        if opt.slicer and name not in ("filter", "atlas", "device"):
            assert state[name] == opt.web_default, name
    assert state["filter_type"] == vocabulary.NO_FILTER and state["filter_range"] == [0.0, 1.0]


@pytest.mark.parametrize("value", [None, "", "none"])
def test_no_filter_is_one_value_in_the_library(value):
    from NeuroRelevanceLib.jobs import Settings

    assert vocabulary.library_filter(value) is None
    assert panel.run_settings(method="gradient", preset="epsilon-plus", target=None, filter_type=value or "none",
                              filter_low=0, filter_high=1, filter_placement="input", opacity=0.5, threshold=0.1,
                              positive_only=False, atlas=None, epsilon=1e-6, gamma=0.25, alpha=1)["filter"] is None
    assert Settings(filter=value).filter is None


def test_one_input_normalisation_constant():
    from NeuroRelevanceLib.models import card, schema

    assert not hasattr(schema, "NORMALIZATIONS") and card.INPUT_NORMALIZATIONS == schema.INPUT_NORMALIZATIONS
