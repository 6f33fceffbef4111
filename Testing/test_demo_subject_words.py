"""The demo's subject is not called "held-out": that word now means only a card's fresh held-out cohort
(``training.held_out_cohort``, ``pretrained.heldout``). The demo explains one generated subject that no network
saw (index 9001 of the card's generator, outside every split and outside the held-out cohort); the command
line's help, the demo's log line and the docstrings a user reads say so."""
from __future__ import annotations

import argparse

import pytest

import NeuroRelevanceLib.demo_run as demo_run
from NeuroRelevanceLib import pretrained
from NeuroRelevanceLib.cli import build_parser


def _demo_help() -> str:
    parser = build_parser()
    demo = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    texts = [next(c.help for c in demo._choices_actions if c.dest == "demo")]
    texts += [a.help or "" for a in demo.choices["demo"]._actions]
    return " ".join(texts)


@pytest.mark.parametrize("text", [
    pytest.param(_demo_help(), id="cli demo help"),
    pytest.param(demo_run.__doc__, id="demo_run docstring"),
    pytest.param(demo_run.DemoSubject.__doc__, id="demo_run.DemoSubject"),
    pytest.param(pretrained.DemoSubject.__doc__, id="pretrained.DemoSubject"),
])
def test_the_demo_subject_is_not_called_held_out(text):
    words = " ".join(text.lower().split()).replace("held-out cohort", "")  # naming the cohort to contrast: fine
    assert "held-out" not in words and "held out" not in words, text


def test_the_demo_says_which_subject_it_generates():
    assert demo_run.DEMO_SUBJECT_INDEX == 9001
    assert "9001" in demo_run.__doc__ and "not part of any cohort" in demo_run.__doc__
    assert "no network saw" in _demo_help(), _demo_help()


def test_the_web_demo_loader_does_not_call_its_subject_held_out():
    pytest.importorskip("slicer")
    from NeuroRelevanceLib.web.session import WebSession

    assert "held-out" not in WebSession.load_demo.__doc__
