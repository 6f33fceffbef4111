"""Findings of the fifth new-user trial on the command line (F2, F3, F7, F8, F9).

- F2: a binary file where text (a CSV table, a JSON card, a names CSV) is expected is one clear
  error naming what to give, never an "unexpected error"; nothing is written.
- F3: a refusal to run code from a file names what a command-line user can do (there is no
  ``trusted=True`` flag); the library keeps ``trusted=True``.
- F7: an option that has no effect with the others given is refused, naming the flag; which rule
  parameters a preset uses is read from the preset registry.
- F8: one message per mistake across the commands, in command-line words.
- F9: help texts.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import pytest

from cli_inputs import error_line, make_inputs
from NeuroRelevanceLib.cli import build_parser, main
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    import torch

    from NeuroRelevanceLib.nets import build

    files = make_inputs(tmp_path_factory.mktemp("trial5"))
    d = files.folder
    (d / "random.bin").write_bytes(bytes(range(256)) * 8)
    (d / "gz.csv").write_bytes(gzip.compress(b"path,target\nsub0.nii.gz,1\n"))
    (d / "binary.csv").write_bytes(b"\x80\x04\x95\xff\x00" + bytes(range(256)))
    (d / "binary.json").write_bytes(b"\x80\x04\x95\xff\x00" + bytes(range(256)))
    nib.save(nib.gifti.GiftiImage(), d / "surf.gii")
    net = build("DeepTaylorCNN", seed=1, in_channels=1, n_outputs=2, channels=(4, 8))
    for suffix in (".pt", ".pt2", ".ts"):
        torch.save(net, d / f"full{suffix}")
    card = json.loads(files.classifier.read_text())
    (d / "pickled_card.json").write_text(json.dumps(dict(card, weights="full.pt")))
    (d / "outside_card.json").write_text(json.dumps(dict(card, weights="../x.safetensors")))
    (d / "foreign_card.json").write_text(json.dumps(dict(card, architecture={"class": "collections.OrderedDict"})))
    return files


# ---- F2: binary files where text is expected --------------------------------------------------
@pytest.mark.parametrize("name", ["sub0.nii.gz", "random.bin", "gz.csv", "binary.csv", "full.pt"])
def test_cohort_refuses_a_binary_cohort_argument(f, tmp_path, capsys, name):
    out = tmp_path / "co1"
    code = main(["cohort", str(f.folder / name), "--model", str(f.regressor), "--out", str(out), "--quiet"])
    line = error_line(capsys)
    assert code == 2, line
    assert "targets.csv" in line and "CSV" in line, line
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["explain", "{d}/binary.csv", "--model", "{d}/classifier.json", "--output", "{o}/e"],
    ["explain", "{d}/gz.csv", "--model", "{d}/classifier.json", "--output", "{o}/e"],
    ["regions", "{d}/heat.nii.gz", "--atlas", "{d}/atlas.nii.gz", "--names", "{d}/binary.csv"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/binary.json", "--device", "cpu"],
    ["explain", "{d}/sub0.nii.gz", "--model", "{d}/binary.json", "--output", "{o}/e"],
    ["cohort", "{d}", "--model", "{d}/binary.json", "--out", "{o}/c", "--quiet"],
])
def test_binary_text_inputs_are_user_errors(f, tmp_path, capsys, argv):
    argv = [a.format(d=f.folder, o=tmp_path) for a in argv]
    code = main(argv)
    line = error_line(capsys)
    assert code == 2, line
    assert "binary" in line or "not a" in line or "text" in line, line
    assert not list(tmp_path.iterdir()), "a refused command left files"


# ---- F3: one trust message per front end ----------------------------------------------------------
TRUST_CASES = [
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/full.pt", "--device", "cpu"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/full.pt2", "--device", "cpu"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/full.ts", "--device", "cpu"],
    ["cohort", "{d}", "--model", "{d}/full.pt", "--out", "{o}/c", "--quiet"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/pickled_card.json", "--device", "cpu"],
    ["explain", "{d}/sub0.nii.gz", "--model", "{d}/pickled_card.json", "--output", "{o}/e", "--quiet"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/outside_card.json", "--device", "cpu"],
    ["compare", "{d}/sub0.nii.gz", "--model", "{d}/foreign_card.json", "--device", "cpu"],
    ["explain", "{d}/sub0.nii.gz", "--model", "{d}/foreign_card.json", "--output", "{o}/e", "--quiet"],
]


@pytest.mark.parametrize("argv", TRUST_CASES)
def test_cli_trust_refusal_names_what_a_cli_user_can_do(f, tmp_path, capsys, argv):
    code = main([a.format(d=f.folder, o=tmp_path) for a in argv])
    line = error_line(capsys)
    assert code == 2, line
    assert "load it with trusted=True" not in line and "'I trust this file'" not in line, line
    assert "card with trusted=True" not in line, line
    assert "\x1b" not in line, "torch's terminal colour codes leaked into the message"
    if "pickled_card" in " ".join(argv):  # a whole pickled module where the card wants a state dict
        assert "pickled Python object, not a plain state dict" in line, line
    else:
        assert "Python API" in line and "model card" in line, line


@pytest.mark.parametrize("name", ["full.pt", "full.pt2", "full.ts", "outside_card.json",
                                  "foreign_card.json"])
def test_library_trust_refusal_keeps_trusted_true(f, name):
    from NeuroRelevanceLib.models import load_model

    with pytest.raises(InputError, match=r"trusted=True"):
        load_model(f.folder / name)


def test_explain_and_compare_say_the_same_about_a_pickled_model(f, tmp_path, capsys):
    lines = []
    for argv in TRUST_CASES[4:6]:
        main([a.format(d=f.folder, o=tmp_path) for a in argv])
        lines.append(error_line(capsys).split("error: ", 1)[1])
    assert lines[0].replace("--model: ", "") == lines[1].replace("--model: ", ""), lines


# ---- F7: options without effect ---------------------------------------------------------------
def _explain(f, tmp_path, *extra):
    return ["explain", str(f.scans[0]), "--model", str(f.classifier), "--output", str(tmp_path / "e"),
            "--quiet", "--atlas", "none", *extra]


@pytest.mark.parametrize("extra, flag", [
    (["--preset", "epsilon", "--alpha", "3"], "--alpha"),
    (["--preset", "epsilon-plus", "--gamma", "0.5"], "--gamma"),
    (["--preset", "deep-taylor", "--epsilon", "0.1"], "--epsilon"),
    (["--preset", "alpha2-beta1", "--epsilon", "0.1"], "--epsilon"),
    (["--filter-range", "0.2", "0.5"], "--filter-range"),
    (["--filter-placement", "every-layer"], "--filter-placement"),
    (["--method", "gradient", "--gamma", "0.5"], "--gamma"),
    (["--method", "gradient", "--epsilon", "0.5"], "--epsilon"),
])
def test_explain_refuses_options_without_effect(f, tmp_path, capsys, extra, flag):
    code = main(_explain(f, tmp_path, *extra))
    line = error_line(capsys)
    assert code == 2, line
    assert flag in line, line
    assert "explain_cohort" not in line and "table_required" not in line, line
    assert not (tmp_path / "e").exists()


def test_rule_parameters_follow_the_preset_registry(f):
    """Every preset × parameter: accepted exactly when the registry says the preset uses it."""
    from NeuroRelevanceLib.batch.options import BatchOptions
    from NeuroRelevanceLib.engine.presets import PRESETS, preset_parameters
    from NeuroRelevanceLib.models.card import read_card

    card = read_card(f.classifier)
    used = preset_parameters()
    for preset in PRESETS:
        for name, value in (("alpha", 3.0), ("epsilon", 0.2), ("gamma", 0.3)):
            params = {} if name == "alpha" else {name: value}
            options = BatchOptions(preset=preset, alpha=value if name == "alpha" else None, engine_params=params,
                                   atlases=())
            if name in used[preset]:
                options.checked(card)
            else:
                with pytest.raises(InputError, match=f"{name}="):  # the library's spelling (the CLI: --{name})
                    options.checked(card)


# ---- F8: one message per mistake, in command-line words ----------------------------------------------
def test_regression_target_says_regression(f, tmp_path, capsys):
    code = main(["compare", str(f.scans[0]), "--model", str(f.regressor), "--target", "AD", "--device", "cpu",
                 "--methods", "gradient"])
    line = error_line(capsys)
    assert code == 2 and "regression" in line and "--target" in line, line


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "foo"])
def test_device_message_is_the_same_for_every_command(f, tmp_path, capsys, device, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the test machine may have a GPU
    runs = {
        "explain": _explain(f, tmp_path, "--device", device),
        "compare": ["compare", str(f.scans[0]), "--model", str(f.classifier), "--device", device],
        "cohort": ["cohort", str(f.cohort), "--model", str(f.regressor), "--out", str(tmp_path / "c"),
                   "--device", device, "--quiet"],
    }
    messages = set()
    for argv in runs.values():
        assert main(argv) == 2
        line = error_line(capsys)
        assert "--device" in line and "device=" not in line, line
        messages.add(line.split("error: ", 1)[1])
    assert len(messages) == 1, messages


def test_atlas_error_names_atlases_as_in_the_help(f, capsys):
    assert main(["regions", str(f.heat), "--atlas", "foo"]) == 2
    line = error_line(capsys)
    assert "available_atlases()" not in line, line
    assert "DesikanKilliany" in line and "AAL3" in line, line


def test_gifti_is_refused_alike_by_regions_and_compare(f, capsys):
    gii = str(f.folder / "surf.gii")
    assert main(["regions", gii, "--atlas", str(f.atlas)]) == 2
    regions = error_line(capsys)
    assert main(["compare", gii, "--model", str(f.classifier), "--device", "cpu"]) == 2
    compare = error_line(capsys)
    for line in (regions, compare):
        assert "GiftiImage, not a volume" in line and "SimpleITK" not in line, line


# ---- F9: help ------------------------------------------------------------------------------------
def _help(command: str) -> str:
    parser = build_parser([command])
    sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001 - argparse has no public way
    return " ".join(sub.format_help().split())


def test_help_texts_read_plainly():
    explain, compare, cohort = _help("explain"), _help("compare"), _help("cohort")
    assert "not the filter range in [1, 10]" not in explain
    assert "((" not in compare and "))" not in compare
    assert "['" not in compare and "[0.0," not in compare
    assert "[0, 100]" in cohort and "[1, 4096]" in cohort and "[1, 4096]" in explain
    parser = build_parser(["cohort"])
    sub = parser._subparsers._group_actions[0].choices["cohort"]  # noqa: SLF001
    for action in sub._actions:  # noqa: SLF001
        assert action.help, f"{action.option_strings or action.dest} has no help"


def test_methods_doc_names_the_inclusivity_flag():
    text = (Path(__file__).resolve().parents[1] / "docs" / "methods.md").read_text(encoding="utf-8")
    assert "--inclusivity-threshold" in text


def test_every_bounded_number_option_names_its_range_in_the_help():
    """The class of F9: a range the parser enforces is one the help states."""
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    missing = []
    for name, sub in commands.choices.items():
        for action in sub._actions:  # noqa: SLF001
            span = getattr(action.type, "span", "")
            if not span.startswith("in ["):
                continue
            text = " ".join((action.help or "").split())
            if span.removeprefix("in ") not in text:
                missing.append(f"{name} {'/'.join(action.option_strings)}: {span} not in {text!r}")
    assert not missing, "\n".join(missing)
