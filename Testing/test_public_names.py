"""One name per meaning at the public surfaces (issue 19): ``kind`` meant the filter type, an option's value
type, the web page's input source and an engine operator's kind; the summary map's and the model card's
normalisations were two constants that differed by one letter. Each meaning now has its own name; only the
engine's operator ``kind`` keeps the word (docs/engine.md, "operator kind")."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "NeuroRelevance" / "NeuroRelevanceLib"
#: modules whose public functions, methods and dataclass fields must not use the word ``kind``
SURFACES = ("vocabulary", "panel", "jobs", "explanation.filters", "explanation.dispatch", "mrml.display",
            "web.defaults")


def _members(module):
    for name, thing in vars(module).items():
        if name.startswith("_") or getattr(thing, "__module__", None) != module.__name__:
            continue
        yield name, thing
        if inspect.isclass(thing):
            if dataclasses.is_dataclass(thing):
                for f in dataclasses.fields(thing):
                    yield f"{name}.{f.name}", f.name
            for m, f in vars(thing).items():
                if not m.startswith("_") and callable(f):
                    yield f"{name}.{m}", f


def kind_names(module) -> list[str]:
    found = []
    for label, thing in _members(module):
        if isinstance(thing, str):  # a dataclass field's name
            if "kind" in thing:
                found.append(label)
            continue
        if "kind" in label.rsplit(".", 1)[-1]:
            found.append(label)
        if callable(thing):
            try:
                params = inspect.signature(thing).parameters
            except (TypeError, ValueError):
                continue
            found += [f"{label}({p})" for p in params if "kind" in p]
    return found


@pytest.mark.parametrize("name", SURFACES)
def test_no_public_kind(name):
    pytest.importorskip("vtk") if name.startswith("mrml") else None
    assert kind_names(importlib.import_module(f"NeuroRelevanceLib.{name}")) == []


def test_the_web_page_state_names_no_kind():
    from NeuroRelevanceLib.web.defaults import option_state

    text = (LIB / "web" / "defaults.py").read_text() + (LIB / "web" / "ui.py").read_text()
    assert not re.search(r"\bkind\b|_kind\b|-kind-", text)
    assert "kind" not in " ".join(option_state())


def test_normalisation_constants_are_named_for_what_they_hold_and_defined_once():
    defined: dict[str, list[str]] = {}
    for path in LIB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and re.fullmatch(r"\w*NORMALI[SZ]ATIONS", target.id):
                        defined.setdefault(target.id, []).append(path.relative_to(LIB).as_posix())
    assert defined == {"SUMMARY_NORMALISATIONS": ["methods/summary.py"],
                       "INPUT_NORMALIZATIONS": ["models/schema.py"]}


def test_the_kind_check_can_fail():
    import types

    probe = types.ModuleType("probe")

    def apply(r, kind):  # noqa: ARG001
        return r

    apply.__module__ = "probe"
    probe.apply = apply
    assert kind_names(probe) == ["apply(kind)"]
