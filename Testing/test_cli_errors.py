"""Every command-line mistake is one line on stderr and exit code 2; an unexpected failure one line + a log.

Three layers: a table of bad values per sub-command run in-process through ``main(argv)`` (real
files: a model card, corrupt weights, NIfTI scans, an atlas, a cohort); a property test
(hypothesis) that feeds arbitrary text to every numeric option and checks "parsed into its range
or refused in one line naming the option"; and a few real subprocess runs of the installed entry
point. Folders a failed command would have made are checked to be gone.
"""
from __future__ import annotations

import math
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_inputs import make_inputs
from NeuroRelevanceLib.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("cli-inputs"))


def one_line_error(capsys, code: int = 2) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


# ---- the table: each sub-command's bad values ------------------------------------------------
def _cases(f, out):
    """(argv, fragment the one-line message must contain) per sub-command."""
    scan, card, B = str(f.scans[0]), str(f.classifier), f.blocker
    compare = ["compare", scan, "--model", card, "--methods", "lrp", "--steps", "2", "--device", "cpu"]
    regions = ["regions", str(f.heat), "--atlas", str(f.atlas)]
    cohort = ["cohort", str(f.cohort), "--model", str(f.regressor), "--out", str(out / "cohort"),
              "--device", "cpu", "--quiet"]
    demo = ["demo", "--output", str(out / "demo")]
    return {
        "demo": [
            (demo + ["--spacing", "0"], "--spacing"), (demo + ["--spacing", "-2"], "--spacing"),
            (demo + ["--spacing", "nan"], "--spacing"), (demo + ["--spacing", "inf"], "--spacing"),
            (demo + ["--spacing", "1e-9"], "--spacing"), (demo + ["--spacing", "abc"], "--spacing"),
            (demo + ["--spacing", "100"], "--spacing"),
            (demo + ["--atlas", "nope"], "--atlas"), (demo + ["--atlas", "AAL4"], "--atlas"),
            (demo + ["--atlas", str(f.text)], "--atlas"), (demo + ["--atlas", ""], "--atlas"),
            (["demo", "--output", str(B / "x")], "a-file"), (["demo", "--output", str(B)], "a-file"),
            (["demo", "--smoke", "--output", str(B / "y")], "a-file"),
            (["demo", "--bogus"], "--bogus"),
        ],
        "regions": [
            (regions + ["--csv", str(B / "x.csv")], "--csv"), (regions + ["--png", str(B / "x.png")], "--png"),
            (regions + ["--csv", str(f.folder)], "--csv"),
            (["regions", str(f.heat), "--atlas", "nope"], "--atlas"),
            (["regions", str(f.heat), "--atlas", "AAL4"], "--atlas"),
            (["regions", str(f.heat), "--atlas", str(f.text)], "--atlas"),
            (["regions", str(f.text), "--atlas", str(f.atlas)], "text.nii.gz"),
            (["regions", str(f.folder / "missing.nii.gz"), "--atlas", str(f.atlas)], "missing.nii.gz"),
            (regions + ["--rank-by", "nope"], "nope"), (regions + ["--top", "0"], "--top"),
            (regions + ["--top", "-1"], "--top"), (regions + ["--top", "2.5"], "--top"),
            (regions + ["--min-overlap", "nan"], "--min-overlap"),
            (regions + ["--min-overlap", "-0.1"], "--min-overlap"),
            (regions + ["--min-overlap", "1.5"], "--min-overlap"),
            (regions + ["--names", str(f.folder / "missing.csv")], "missing.csv"),
            (regions + ["--per-subject", "--png", str(out / "p.png")], "--png"),
            (["regions"], "heatmap"),
        ],
        "compare": [
            (compare + ["--preset", "nope"], "--preset"), (compare[:5] + ["nope"], "nope"),
            (["compare", scan, "--model", str(f.corrupt)], "--model"),
            (["compare", scan, "--model", str(f.truncated)], "--model"),
            (["compare", scan, "--model", str(f.notjson)], "notjson.json"),
            (["compare", scan, "--model", str(f.garbage)], "garbage.pt"),
            (["compare", scan, "--model", str(f.folder / "missing.json")], "missing.json"),
            (["compare", scan, "--model", str(f.scans[1])], "--model"),
            (compare + ["--steps", "0"], "--steps"), (compare + ["--steps", "-3"], "--steps"),
            (compare + ["--fraction", "0"], "--fraction"), (compare + ["--fraction", "3"], "--fraction"),
            (compare + ["--fraction", "nan"], "--fraction"), (compare + ["--patch", "0"], "--patch"),
            (compare + ["--random-repeats", "0"], "--random-repeats"),
            (compare + ["--threshold", "-1"], "--threshold"), (compare + ["--threshold", "inf"], "--threshold"),
            (compare + ["--target", "9"], "--target"), (compare + ["--target", "-1"], "--target"),
            (compare + ["--baseline", "zero"], "--baseline"), (compare[:-2] + ["--device", "nope"], "--device"),
            (compare + ["--csv", str(B / "t.csv")], "--csv"), (compare + ["--png", str(B / "c.png")], "--png"),
            (compare + ["--per-subject-csv", str(B / "r.csv")], "--per-subject-csv"),
            (compare + ["--ground-truth", scan, scan], "--ground-truth"),
            (compare + ["--ground-truth", str(f.far_mask)], "does not overlap the scan"),
            (compare + ["--brain-masks", str(f.far_mask)], "does not overlap the scan"),
            (compare + ["--ground-truth", str(f.empty_mask)], "is empty"),
            (["compare", str(f.folder / "missing.nii.gz"), "--model", card, "--device", "cpu"], "missing.nii.gz"),
            (["compare", scan], "--model"),
        ],
        "cohort": [
            (cohort + ["--r1", "5", "2"], "--r1"), (cohort + ["--r2", "9", "3"], "--r2"),
            (cohort + ["--r1", "0", "3"], "--r1"), (cohort + ["--r1", "2.5", "3"], "--r1"),
            (cohort + ["--rank", "0", "2"], "--rank"), (cohort + ["--rank", "2"], "--rank"),
            (cohort + ["--sparsity", "-1"], "--sparsity"), (cohort + ["--sparsity", "nan"], "--sparsity"),
            (cohort + ["--batch-size", "0"], "--batch-size"), (cohort + ["--seed", "-1"], "--seed"),
            (cohort + ["--no-grid"], "--rank"), (cohort + ["--atlas", "AAL4"], "--atlas"),
            (cohort[:-3] + ["--device", "nope"], "--device"),
            (["cohort", str(f.cohort), "--model", str(f.corrupt), "--out", str(out / "c2")], "--model"),
            (["cohort", str(f.cohort), "--model", str(f.regressor), "--out", str(B / "c")], "a-file"),
            (["cohort", str(f.folder / "none"), "--model", str(f.regressor), "--out", str(out / "c3")], "none"),
            (cohort + ["--target-column", "age"], "age"),
        ],
        "web": [
            (["web", "--port", "99999"], "--port"), (["web", "--port", "-1"], "--port"),
            (["web", "--port", "http"], "--port"),
            (["web", "--data", str(f.folder / "missing"), "--no-demo"], "--data"),
            (["web", "--host", "no-such-host.invalid", "--port", "0", "--no-demo"], "--host"),
        ],
    }


COMMANDS = ("demo", "regions", "compare", "cohort", "web")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bad_value_is_one_line_and_exit_2(inputs, tmp_path, capsys, command):
    cases = _cases(inputs, tmp_path)[command]
    for argv, fragment in cases:
        started = time.perf_counter()
        code = main(argv)
        line = one_line_error(capsys)
        assert code == 2, (argv, line)
        assert fragment in line, (argv, line)
        assert line.startswith("neurorelevance"), line
        assert time.perf_counter() - started < 20, f"{argv}: refused only after the work"
        assert not any(p.name in ("demo", "cohort", "c2", "c3") for p in tmp_path.iterdir()), \
            f"{argv} left a folder behind"
    print(f"{command}: {len(cases)} bad-value cases")


def test_busy_port_is_refused_before_the_viewer_starts(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["web", "--port", str(port), "--no-demo"]) == 2
    line = one_line_error(capsys)
    assert f"--port {port}" in line and "in use" in line


def test_demo_atlas_typo_fails_fast_and_leaves_no_folder(tmp_path, capsys):
    started = time.perf_counter()
    assert main(["demo", "--atlas", "nope", "--output", str(tmp_path / "new" / "demo")]) == 2
    assert time.perf_counter() - started < 10
    assert "--atlas" in one_line_error(capsys) and not (tmp_path / "new").exists()


# ---- unexpected failures: one line and a log file ---------------------------------------------
@pytest.mark.parametrize("error", [ZeroDivisionError("division by zero"), RuntimeError("boom\nsecond line"),
                                   KeyError("x"), ValueError("a library check")])
def test_unexpected_failure_is_one_line_naming_the_log(tmp_path, capsys, monkeypatch, error):
    import NeuroRelevanceLib.regions.cli as regions_cli

    def broken(args):
        raise error

    monkeypatch.setenv("NEURORELEVANCE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(regions_cli, "run_regions", broken)
    assert main(["regions", "--list-atlases"]) == 1
    line = one_line_error(capsys)
    assert type(error).__name__ in line and "full traceback in" in line
    logs = list((tmp_path / "logs").glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and type(error).__name__ in text


def test_os_error_with_a_file_is_a_user_error(capsys, monkeypatch):
    import NeuroRelevanceLib.regions.cli as regions_cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/srv/data/heat.nii.gz")

    monkeypatch.setattr(regions_cli, "run_regions", denied)
    assert main(["regions", "--list-atlases"]) == 2
    assert "/srv/data/heat.nii.gz" in one_line_error(capsys)


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert main(["regions", "--help"]) == 0
    assert "usage" in capsys.readouterr().out


# ---- property test: arbitrary text for every numeric option -----------------------------------
#: option -> (sub-command argv before it, its range, integer?, open at the low end?)
NUMERIC = {
    ("demo", "--spacing"): ([], 0.5, 8.0, False, False),
    ("regions", "--min-overlap"): (["h.nii.gz"], 0.0, 1.0, False, False),
    ("regions", "--top"): (["h.nii.gz"], 1, math.inf, True, False),
    ("compare", "--steps"): (["s.nii.gz", "--model", "m.json"], 1, 10000, True, False),
    ("compare", "--fraction"): (["s.nii.gz", "--model", "m.json"], 0.0, 1.0, False, True),
    ("compare", "--patch"): (["s.nii.gz", "--model", "m.json"], 1, 64, True, False),
    ("compare", "--random-repeats"): (["s.nii.gz", "--model", "m.json"], 1, 1000, True, False),
    ("compare", "--inclusivity-threshold"): (["s.nii.gz", "--model", "m.json"], 0.0, 1.0, False, False),
    # compare --target takes class names like explain's (trial 3); test_metrics_compare checks its values
    ("cohort", "--batch-size"): (["c", "--model", "m", "--out", "o"], 1, 4096, True, False),
    ("cohort", "--seed"): (["c", "--model", "m", "--out", "o"], 0, 2**32 - 1, True, False),
    ("cohort", "--sparsity"): (["c", "--model", "m", "--out", "o"], 0.0, 100.0, False, False),
    ("web", "--port"): ([], 0, 65535, True, False),
}
TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.sampled_from(["", " ", "nan", "-inf", "1e309", "0x10", "1_0", "½", "--", "3,5", "١٢"]),
    st.text(max_size=12),
)


PARSER = build_parser()


@settings(max_examples=300, deadline=None)
@given(option=st.sampled_from(sorted(NUMERIC)), text=TEXT)
def test_numeric_options_parse_into_their_range_or_fail_in_one_line(option, text):
    import contextlib
    import io

    command, name = option
    before, low, high, integer, low_open = NUMERIC[option]
    argv = [command, *before, f"{name}={text}"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = PARSER.parse_args(argv)
    except SystemExit as exc:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert exc.code == 2 and len(lines) == 1, err.getvalue()
        assert name in lines[0] and lines[0].startswith(f"neurorelevance {command}: error:")
        return
    value = getattr(args, name.lstrip("-").replace("-", "_"))
    value = value[0] if isinstance(value, list) else value
    assert math.isfinite(value) and low <= value <= high and not (low_open and value == low)
    assert not integer or isinstance(value, int)


# ---- real processes ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["demo", "--spacing", "0"], "--spacing"),
    (["compare", "s.nii.gz", "--model", "missing.json", "--preset", "nope"], "--preset"),
])
def test_real_process_prints_one_line_and_exits_2(tmp_path, argv, fragment):
    result = subprocess.run([sys.executable, "-m", "NeuroRelevanceLib", *argv], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert fragment in lines[0] and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_numeric_range_prints_its_bounds_plainly(capsys):
    """"[1, 1.04858e+06]" was printed for --max-upload-mb: whole-number bounds are written in full."""
    import argparse
    import re

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if getattr(action.type, "__name__", "") not in ("an integer", "a number"):
                continue
            with pytest.raises(argparse.ArgumentTypeError) as info:
                action.type("not a number")
            message = str(info.value)
            assert not re.search(r"\de[+-]\d", message), (name, action.option_strings, message)
            checked += 1
    assert checked >= 20
    from NeuroRelevanceLib.cli_checks import number

    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[1, 1048576\]"):
        number(1, 1 << 20, integer=True)("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[0.5, 8\] mm"):
        number(0.5, 8.0, unit="mm")("9")
