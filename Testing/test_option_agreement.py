"""One setting, one name, range, default and help text in every front end.

For each option of ``vocabulary.OPTIONS``: every command-line flag of every sub-command that sets it (found by its
flag or by its destination name), the web control bound to it and the Slicer panel widget bound to it agree with
the vocabulary — flag name, choices, range, default and help (the CLI help starts with the vocabulary's text, the
web control's title is it, the panel's tool tip is it); the labels of the web control and of the panel are the
vocabulary's label. A flag that two sub-commands share but the vocabulary does not declare is either the same
definition in both or listed below as a different setting under the same word, with the reason.
"""
from __future__ import annotations

import argparse
import ast
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from NeuroRelevanceLib.vocabulary import OPTIONS, tooltip

MODULE = Path(__file__).resolve().parents[1] / "NeuroRelevance"
UI = MODULE / "Resources" / "UI" / "NeuroRelevance.ui"
WEB_UI = MODULE / "NeuroRelevanceLib" / "web" / "ui.py"
COMMANDS = ("explain", "regions", "cohort", "compare", "demo")
#: (command, flag) -> why its default deliberately differs from the vocabulary's
OWN_DEFAULTS = {("regions", "--atlas"): "a region table needs an atlas: AAL3 unless one is named",
                ("demo", "--atlas"): "the demo cohort is labelled with Desikan-Killiany"}
#: flag -> why the command line takes more than the widgets' choices (checked when the command runs)
OWN_CHOICES = {"--device": "the command line also takes cpu:0 and cuda:N (cli_arguments.device_argument)",
               "--method": "the command line also takes the aliases (saliency, ig, ...) and summary",
               ("compare", "--preset"): "checked against the live preset registry before any work, with the fix "
                                        "(metrics/cli._check_before_work; test_engine_presets)"}
#: flags shared by sub-commands that name different settings (not in the vocabulary), with the reason
SAME_WORD_OTHER_SETTING = {
    "--batch-size": "explain: subjects per task; cohort: volumes per forward pass of the activation capture",
    "--layer": "cohort: the layer decomposed; compare: the layer of the Grad-CAM family",
    "--model": "explain and compare need a model card, cohort also takes a TorchScript file or .pt2; demo names "
               "a bundled network (pretrained.DEMO_SUBJECTS)",
    "--csv": "each command's own table", "--png": "each command's own figure",
    "--output": "each command's own output folder",
    "--quiet": "explain still prints its summary; cohort prints nothing",
}
#: the web page's state name of an option where it is not the option's name
WEB_STATE = {"filter": "filter_type"}


def parsers() -> dict[str, argparse.ArgumentParser]:
    from NeuroRelevanceLib.cli import build_parser

    found = {}
    for command in COMMANDS:
        parser = build_parser([command])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        found[command] = sub.choices[command]
    return found


def flag_disagreements(command: str, action: argparse.Action) -> list[str]:
    """How one flag differs from the vocabulary option it sets (empty: it agrees or sets none)."""
    opt = next((o for o in OPTIONS.values() if (o.flag and o.flag in action.option_strings) or o.name == action.dest),
               None)
    if opt is None or not action.option_strings:
        return []
    where = f"{command} {'/'.join(action.option_strings)}"
    if opt.flag is None:
        return [f"{where} sets option {opt.name!r}, which has no flag in the vocabulary (a different setting "
                f"needs a different name)"]
    problems = []
    if action.option_strings[0] != opt.flag or action.dest != opt.name:
        problems.append(f"{where}: flag/dest should be {opt.flag} / {opt.name}, not {action.option_strings[0]} / "
                        f"{action.dest}")
    own_choices = opt.flag in OWN_CHOICES or (command, opt.flag) in OWN_CHOICES
    if opt.choices is not None and not own_choices and set(action.choices or ()) != set(opt.items):
        problems.append(f"{where} choices {action.choices} != {opt.items}")
    default = tuple(action.default) if isinstance(action.default, list) else action.default
    # None: not given, the library's default applies (a flag may need to tell "not given" from the default)
    if default is not None and default != opt.library_default and (command, opt.flag) not in OWN_DEFAULTS:
        problems.append(f"{where} default {default!r} != {opt.library_default!r}")
    if not (action.help or "").startswith(opt.help):
        problems.append(f"{where} help {action.help!r} does not start with the vocabulary's {opt.help!r}")
    if opt.low is not None:
        low, high = opt.bounds
        for inside in (low, high if math.isfinite(high) else low + 1):
            try:
                action.type(repr(inside))
            except (argparse.ArgumentTypeError, TypeError):
                problems.append(f"{where} rejects {inside:g}, inside [{low:g}, {high:g}]")
        for outside in (low - 1e-3, high * 1.001 + 1e-3):
            if math.isfinite(outside):
                try:
                    action.type(repr(outside))
                    problems.append(f"{where} accepts {outside:g}, outside [{low:g}, {high:g}]")
                except (argparse.ArgumentTypeError, TypeError):
                    pass
    return problems


def shared_flag_disagreements(found: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Flags of several sub-commands, outside the vocabulary, that differ without being listed as different."""
    by_flag: dict[str, dict[str, argparse.Action]] = defaultdict(dict)
    for command, parser in found.items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    by_flag[flag][command] = action
    vocabulary_flags = {o.flag for o in OPTIONS.values() if o.flag}
    problems = []
    for flag, actions in sorted(by_flag.items()):
        if len(actions) < 2 or flag in vocabulary_flags or flag in SAME_WORD_OTHER_SETTING:
            continue
        shapes = {(a.dest, repr(a.default), repr(a.choices), a.help, a.nargs, a.metavar) for a in actions.values()}
        if len(shapes) > 1:
            problems.append(f"{flag} differs between {', '.join(actions)}: declare it in the vocabulary or list it "
                            f"in SAME_WORD_OTHER_SETTING with the reason")
    return problems


def test_every_command_line_flag_agrees_with_the_vocabulary():
    found = parsers()
    problems = [p for command, parser in found.items() for a in parser._actions for p in flag_disagreements(command, a)]
    assert problems == []
    assert shared_flag_disagreements(found) == []


def test_shared_settings_are_declared_once():
    """The settings several commands share have vocabulary entries (not hand-written flags)."""
    found = parsers()
    for name, commands in {"device": ("explain", "cohort", "compare"), "preset": ("explain", "compare"),
                           "target": ("explain", "compare"), "gain_on": ("explain", "regions"),
                           "min_overlap": ("explain", "regions"), "atlas": COMMANDS}.items():
        for command in commands:
            assert any(OPTIONS[name].flag in a.option_strings for a in found[command]._actions), (name, command)


def test_the_flag_check_can_fail():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", help="where")          # hand-written: default and help differ
    parser.add_argument("--filter", choices=("pass",), help=OPTIONS["filter"].help)
    parser.add_argument("--threshold", type=float, default=0.1)           # another setting under the name
    parser.add_argument("--gain-on", dest="gain_on", choices=("positive",), default="positive",
                        help=OPTIONS["gain_on"].help)
    problems = [p for a in parser._actions for p in flag_disagreements("probe", a)]
    assert any("--device default" in p for p in problems) and any("--device help" in p for p in problems)
    assert any("--threshold sets option 'threshold'" in p for p in problems)
    assert any("--gain-on choices" in p for p in problems) and any("--filter choices" in p for p in problems)
    one, two = argparse.ArgumentParser(), argparse.ArgumentParser()
    one.add_argument("--seeds", type=int, default=0)
    two.add_argument("--seeds", type=int, default=1)
    assert shared_flag_disagreements({"a": one, "b": two})


# ---- the web page -------------------------------------------------------------------------------------------
def web_controls(source: str) -> dict[str, dict[str, ast.expr]]:
    """state name -> keywords of the web control bound to it (``v_model=("name", ...)``)."""
    controls = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        bound = keywords.get("v_model") or keywords.get("v_model_number")
        if isinstance(bound, ast.Tuple) and bound.elts and isinstance(bound.elts[0], ast.Constant):
            controls[bound.elts[0].value] = keywords
        elif isinstance(bound, ast.Tuple) and bound.elts and isinstance(bound.elts[0], ast.Name):
            controls["*" + bound.elts[0].id] = keywords  # a loop over option names
    return controls


def _reads_option(expr: ast.expr, field: str) -> bool:
    """``expr`` reads the vocabulary: ``OPTIONS[...].<field>`` (or a formatted text that starts with it)."""
    if isinstance(expr, ast.JoinedStr) and expr.values and isinstance(expr.values[0], ast.FormattedValue):
        expr = expr.values[0].value  # f"{OPTIONS[name].help} in [{low:g}, {high:g}]"
    return isinstance(expr, ast.Attribute) and expr.attr == field and isinstance(expr.value, ast.Subscript) \
        and isinstance(expr.value.value, ast.Name) and expr.value.value.id == "OPTIONS"


def web_disagreements(source: str) -> list[str]:
    controls = web_controls(source)
    problems = []
    for name, opt in OPTIONS.items():
        state = WEB_STATE.get(name, name)
        keywords = controls.get(state) or (controls.get("*name") if name in ("epsilon", "gamma", "alpha") else None)
        if keywords is None:
            # the web page runs where the server runs: no device control
            if opt.slicer and name != "device":
                problems.append(f"no web control for option {name!r} (state {state!r})")
            continue
        for field, key in (("label", "label"), ("help", "title")):
            if key not in keywords or not _reads_option(keywords[key], field):
                problems.append(f"web control {state!r}: {key} is not the vocabulary's {field}")
    return problems


def test_web_controls_take_label_and_help_from_the_vocabulary():
    assert web_disagreements(WEB_UI.read_text()) == []


def test_the_web_check_can_fail():
    source = WEB_UI.read_text().replace('label=OPTIONS["opacity"].label', 'label="Opacity"', 1)
    assert source != WEB_UI.read_text()
    assert any("'opacity'" in p for p in web_disagreements(source))


# ---- the Slicer panel ---------------------------------------------------------------------------------------
def panel_disagreements(ui_text: str) -> list[str]:
    """Labels and tool tips of the .ui widgets bound to vocabulary options."""
    root = ET.fromstring(ui_text)
    problems = []
    by_param = {o.slicer: o for o in OPTIONS.values() if o.slicer}
    for layout in root.iter("layout"):
        rows: dict[str, list] = defaultdict(list)
        for item in layout.findall("item"):
            if item.find("widget") is not None:
                rows[item.get("row")].append(item.find("widget"))
        for widgets in rows.values():
            for widget in widgets:
                props = {p.get("name"): p for p in widget.findall("property")}
                opt = by_param.get(props["SlicerParameterName"].findtext("string")) \
                    if "SlicerParameterName" in props else None
                if opt is None:
                    continue
                tip = props["toolTip"].findtext("string") if "toolTip" in props else None
                if tip != tooltip(opt.name):
                    problems.append(f"{widget.get('name')} tool tip {tip!r} is not the vocabulary's help "
                                    f"{opt.help!r}")
                labels = [w for w in widgets if w.get("class") == "QLabel"]
                texts = [{p.get("name"): p for p in w.findall("property")}["text"].findtext("string") for w in labels]
                own = {p.get("name"): p for p in widget.findall("property")}.get("text")
                shown = texts or ([own.findtext("string")] if own is not None else [])
                if shown != [f"{opt.label}:"] and shown != [opt.label]:
                    problems.append(f"{widget.get('name')} label {shown} is not the vocabulary's {opt.label!r}")
    return problems


def test_slicer_panel_labels_and_tool_tips_are_the_vocabulary_ones():
    assert panel_disagreements(UI.read_text()) == []


def test_the_panel_check_can_fail():
    text = UI.read_text()
    label = OPTIONS["opacity"].label
    drifted = text.replace(f"<string>{label}:</string>", "<string>Overlay opacity:</string>", 1)
    assert drifted != text
    assert any("label" in p and "Opacity" in p for p in panel_disagreements(drifted))


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_option_has_a_label_where_a_front_end_shows_it(name):
    opt = OPTIONS[name]
    assert opt.help and opt.help == opt.help.strip()
    if opt.slicer:
        assert opt.label, name
