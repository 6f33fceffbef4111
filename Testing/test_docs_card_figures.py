"""The figures the docs quote for the bundled cards agree with the cards' recorded evidence at the precision they
are printed: every row of the per-card tables in docs/pretrained.md, the card table of docs/fidelity.md, the prose
quotes of folds, chances and ceilings, the AD card's reason as docs/pretrained.md quotes it, and the AD demo's
recommendation line as README.md quotes it. A printed figure agrees when some value the 4-decimal record allows
rounds to it (folds: mass / chance over the record's rounding), so drift such as a development ceiling quoted for
the fresh cohort (0.83 for 0.8245) fails while the benchmark's unrounded two-decimal folds pass."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from NeuroRelevanceLib.models import read_card
from NeuroRelevanceLib.panel import recommendation_text
from NeuroRelevanceLib.pretrained import MODELS, model_card_path

ROOT = Path(__file__).resolve().parents[1]
HALF = 5e-5          # half a unit of the records' fourth decimal
PARTS = ("development", "held_out", "retired_held_out")


def _evidence(name: str) -> dict:
    return json.loads(model_card_path(name).read_text())["evidence"]


def _decimals(printed: str) -> int:
    return len(printed.split(".")[1]) if "." in printed else 0


def _agrees(printed: str, low: float, high: float) -> bool:
    """Some value in [low, high] rounds to ``printed`` at its number of decimals."""
    value, half = float(printed), 0.5 * 10.0 ** -_decimals(printed)
    return value - half <= high + 1e-12 and value + half >= low - 1e-12


def _value(printed: str, recorded: float) -> bool:
    return _agrees(printed, recorded - HALF, recorded + HALF)


def _fold(printed: str, scores: dict, method: str) -> bool:
    mass, chance = scores["methods"][method]["mass_accuracy"], scores["chance"]["mass_accuracy"]
    return _agrees(printed, (mass - HALF) / (chance + HALF), (mass + HALF) / (chance - HALF))


def _section(text: str, name: str) -> str:
    start = text.index(f"\n**`{name}`**")
    ends = [text.find(f"\n**`{other}`**", start + 1) for other in MODELS] + [text.find("\nWhat this says", start)]
    return text[start:min(e for e in ends if e > start)]


@pytest.mark.parametrize("name", MODELS)
def test_pretrained_tables_agree_with_the_card(name):
    """Each card's three "/ chance" tables (development, fresh cohort, retired cohort), row by row, and the chance
    each table's heading gives; the fresh cohort's report table's chance and σ = 1 oracle rows."""
    evidence = _evidence(name)
    section = _section((ROOT / "docs" / "pretrained.md").read_text(), name)
    tables = re.split(r"\n\| method \| mass accuracy \| / chance \|[^\n]*\n\|[-|]+\|\n", section)[1:]
    assert len(tables) == 3, name
    checked = 0
    for part, table in zip(PARTS, tables, strict=True):
        scores = evidence[part]
        for row in re.findall(r"^\| (\S+) \| ([0-9.]+) \| ([0-9.]+)× \| ([0-9.]+)× \|", table, re.M):
            method, mass, fold, weakest = row
            entry = scores["methods"][method]
            assert _value(mass, entry["mass_accuracy"]), (part, row, entry)
            assert _fold(fold, scores, method), (part, row, entry, scores["chance"])
            assert _value(weakest, entry["min_subject_fold"]), (part, row, entry)
            checked += 1
    assert checked >= 10
    for part, label in (("development", r"Development subjects \(chance ([0-9.]+)\)"),
                        ("retired_held_out", r"Retired cohort \(seed \d+, chance ([0-9.]+);")):
        printed = re.search(label, section).group(1)
        assert _value(printed, evidence[part]["chance"]["mass_accuracy"]), (part, printed)
    fresh = section[section.index("Fresh held-out cohort"):]
    for label, key in (("chance", "chance"), ("oracle σ=1", "oracle_sigma_1")):
        row = re.search(rf"^\| {re.escape(label)} \| ([0-9.]+) ", fresh, re.M)
        assert row and _value(row.group(1), evidence["held_out"][key]["mass_accuracy"]), (name, label)


def test_fidelity_card_table_agrees_with_the_cards():
    text = (ROOT / "docs" / "fidelity.md").read_text()
    for name in MODELS:
        evidence = _evidence(name)
        preset = json.loads(model_card_path(name).read_text())["recommended_preset"]
        method = f"lrp:{preset}"
        row = re.search(rf"^\| `{name}` [^|]*\| {preset} \|([^\n]+)$", text, re.M)
        assert row, name
        cells = [c.strip().strip("*") for c in row.group(1).strip(" |").split("|")]
        dev, mass, chance, fold, weakest, oracle, _, retired = cells
        held = evidence["held_out"]
        dev_fold, dev_weakest = re.match(r"([0-9.]+) \(([0-9.]+)\)", dev).groups()
        ret_fold, ret_weakest = re.match(r"([0-9.]+) \(([0-9.]+)\)", retired).groups()
        assert _fold(dev_fold, evidence["development"], method), (name, dev)
        dev_entry, held_entry = evidence["development"]["methods"][method], held["methods"][method]
        retired_entry = evidence["retired_held_out"]["methods"][method]
        assert _value(dev_weakest, dev_entry["min_subject_fold"]), (name, dev)
        assert _value(mass, held_entry["mass_accuracy"]), (name, mass)
        assert _value(chance, held["chance"]["mass_accuracy"]), (name, chance)
        assert _fold(fold, held, method), (name, fold)
        assert _value(weakest, held_entry["min_subject_fold"]), (name, weakest)
        assert _value(oracle, held["oracle_sigma_1"]["mass_accuracy"]), (name, oracle)
        assert _fold(ret_fold, evidence["retired_held_out"], method), (name, retired)
        assert _value(ret_weakest, retired_entry["min_subject_fold"]), (name, retired)


#: prose quotes: (file, pattern with named groups fold_<part>, chance_<part>, ceiling_<part>, weakest_<part>, card)
QUOTES = [
    ("docs/pretrained.md", "ad_cnn", r"\((?P<fold_development>[0-9.]+)× on its development subjects, "
                                     r"(?P<fold_held_out>[0-9.]+)× on the fresh held-out"),
    ("docs/pretrained.md", "ad_cnn", r"the\s+AD-like regions, (?P<fold_development>[0-9.]+)× chance "
                                     r"(?P<chance_development>[0-9.]+), "
                                     r"(?P<weakest_development>[0-9.]+)× on the weakest"),
    ("docs/pretrained.md", "ad_cnn", r"\*\*(?P<fold_held_out>[0-9.]+)× chance (?P<chance_held_out>[0-9.]+), "
                                     r"(?P<weakest_held_out>[0-9.]+)× on the weakest subject — above the 5×\s+bar"
                                     r"\*\* \(σ = 1 ceiling (?P<ceiling_held_out>[0-9.]+)\); on the retired cohort "
                                     r"\(seed 1, "
                                     r"32 subjects\) (?P<fold_retired_held_out>[0-9.]+)× chance "
                                     r"(?P<chance_retired_held_out>[0-9.]+) "
                                     r"\((?P<weakest_retired_held_out>[0-9.]+)×\)"),
    ("docs/pretrained.md", "lesion_unet", r"`epsilon`: (?P<fold_development>[0-9.]+)× chance on 21 development "
                                          r"subjects, \*\*(?P<fold_held_out>[0-9.]+)× chance "
                                          r"(?P<chance_held_out>[0-9.]+)"
                                          r" on the 24 fresh subjects\*\* \([0-9.]+, (?P<weakest_held_out>[0-9.]+)×"),
    ("docs/pretrained.md", "lesion_unet", r"on the retired cohort (?P<fold_retired_held_out>[0-9.]+)× "
                                          r"\((?P<weakest_retired_held_out>[0-9.]+)×; ε uses no zB box"),
    ("docs/pretrained.md", "brain_age_resnet", r"`epsilon-gamma-box`: (?P<fold_development>[0-9.]+)× chance on 15\s+"
                                               r"development controls ≥ 50 \((?P<weakest_development>[0-9.]+)× on the "
                                               r"weakest\), \*\*(?P<fold_held_out>[0-9.]+)× chance "
                                               r"(?P<chance_held_out>[0-9.]+) on 18 fresh controls\*\* \([0-9.]+, "
                                               r"(?P<weakest_held_out>[0-9.]+)× on the\s+weakest; AUC [0-9.]+; "
                                               r"conservation error [0-9.]+\), (?P<fold_retired_held_out>[0-9.]+)× "
                                               r"\((?P<weakest_retired_held_out>[0-9.]+)×\) on the 21 controls"),
    ("docs/pretrained.md", "brain_age_resnet", r"\((?P<fold_development>[0-9.]+)× on development, the smallest "
                                               r"conservation error.*?\*\*(?P<fold_held_out>[0-9.]+)× chance "
                                               r"(?P<chance_held_out>[0-9.]+), (?P<weakest_held_out>[0-9.]+)× on the "
                                               r"weakest subject\*\*; on the retired cohort \(seed 1, 21 controls\) "
                                               r"(?P<fold_retired_held_out>[0-9.]+)× "
                                               r"\((?P<weakest_retired_held_out>[0-9.]+)×\)"),
    ("docs/pretrained.md", "brain_age_resnet", r"kept run's recommended preset\s+reaches (?P<fold_held_out>[0-9.]+)× "
                                               r"\(weakest (?P<weakest_held_out>[0-9.]+)×\)"),
    ("docs/pretrained.md", "ad_cnn", r"scored once after the choice, gives\s+(?P<fold_held_out>[0-9.]+)× \(weakest "
                                     r"(?P<weakest_held_out>[0-9.]+)×\)"),
    ("docs/pretrained.md", "ad_cnn", r"reported only for disclosure \((?P<fold_retired_held_out>[0-9.]+)×, weakest "
                                     r"(?P<weakest_retired_held_out>[0-9.]+)×\)"),
    ("docs/fidelity.md", "brain_age_resnet", r"\(chance (?P<chance_held_out>[0-9.]+): (?P<fold_held_out>[0-9.]+)×, "
                                             r"(?P<weakest_held_out>[0-9.]+)× on the weakest subject; σ = 1 ceiling "
                                             r"(?P<ceiling_held_out>[0-9.]+)\)"),
    ("docs/fidelity.md", "ad_cnn", r"`ad_cnn` meets it by a small margin \((?P<fold_held_out>[0-9.]+)×, weakest "
                                   r"subject (?P<weakest_held_out>[0-9.]+)×\)"),
    ("docs/fidelity.md", "lesion_unet", r"`lesion_unet` meets it with a\s+margin \((?P<fold_held_out>[0-9.]+)×, "
                                        r"weakest (?P<weakest_held_out>[0-9.]+)×\)"),
    ("docs/fidelity.md", "brain_age_resnet", r"meets it with a margin: (?P<fold_held_out>[0-9.]+)× on the fresh "
                                             r"cohort, (?P<weakest_held_out>[0-9.]+)× on its\s+weakest subject"),
]


@pytest.mark.parametrize("path,name,pattern", QUOTES)
def test_prose_quotes_agree_with_the_card(path, name, pattern):
    evidence = _evidence(name)
    preset = json.loads(model_card_path(name).read_text())["recommended_preset"]
    match = re.search(pattern, (ROOT / path).read_text(), re.S)
    assert match, (path, pattern)
    for key, printed in match.groupdict().items():
        kind, part = key.split("_", 1)
        scores = evidence[part]
        if kind == "fold":
            ok = _fold(printed, scores, f"lrp:{preset}")
        elif kind == "weakest":
            ok = _value(printed, scores["methods"][f"lrp:{preset}"]["min_subject_fold"])
        else:
            ok = _value(printed, scores["chance" if kind == "chance" else "oracle_sigma_1"]["mass_accuracy"])
        assert ok, (path, name, key, printed)


def test_docs_quote_the_ad_reason_and_readme_the_demo_line_verbatim():
    raw = json.loads(model_card_path("ad_cnn").read_text())
    assert raw["recommendation_reason"] in (ROOT / "docs" / "pretrained.md").read_text()
    line = recommendation_text(read_card(model_card_path("ad_cnn")))
    assert f"“{line}”" in " ".join((ROOT / "README.md").read_text().split()), line
