"""The crafted model files of ``security_payloads`` against every user-facing entry point:
the CLI (``compare``/``cohort --model``, in-process and as ``python -m``), the Slicer logic
(``RelevanceLogic.prepare``) and the web viewer's model selector. Each must refuse with one
clear error and leave no marker; only the Slicer logic with ``trusted=True`` hands the file to torch.
"""
import contextlib
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.errors import InputError
from security_payloads import ALL, TRUSTED_RUNS, card_for, payloads_fixture  # noqa: F401 - the `payloads` fixture

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A valid four-subject cohort folder, so ``cohort`` reaches the model."""
    folder = tmp_path_factory.mktemp("cohort")
    rng = np.random.default_rng(0)
    rows = ["path,target"]
    for n in range(4):
        nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)),
                 str(folder / f"s{n}.nii.gz"))
        rows.append(f"s{n}.nii.gz,{20 + n}")
    (folder / "targets.csv").write_text("\n".join(rows) + "\n")
    return folder


def _cli_args(command: str, model, cohort, out) -> list[str]:
    if command == "compare":
        return ["compare", str(cohort / "s0.nii.gz"), "--model", str(model), "--methods", "lrp"]
    return ["cohort", str(cohort), "--model", str(model), "--out", str(out), "--quiet",
            "--rank", "2", "2", "--no-grid"]


@pytest.mark.parametrize("command", ["compare", "cohort"])
@pytest.mark.parametrize("name", ALL)
def test_cli_refuses_each_file_in_process(payloads, name, command, cohort, tmp_path, capsys):
    from NeuroRelevanceLib.cli import main

    payload = payloads[name]
    payload.reset()
    assert main(_cli_args(command, payload.path, cohort, tmp_path / "out")) == 2
    assert not payload.fired()
    assert not (tmp_path / "out").exists()
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name", ALL)
def test_cli_refuses_a_card_naming_each_file(payloads, name, cohort, tmp_path):
    from NeuroRelevanceLib.cli import main

    payload = payloads[name]
    payload.reset()
    shutil.copy(payload.path, tmp_path / payload.path.name)
    assert main(_cli_args("compare", card_for(payload, tmp_path), cohort, tmp_path / "out")) == 2
    assert not payload.fired()


@pytest.mark.parametrize("command,name,via_card", [("compare", "pt2_weight_pickle", False)])
def test_cli_subprocess_refuses_with_one_line_and_exit_2(payloads, command, name, via_card, cohort,
                                                         tmp_path):
    payload = payloads[name]
    payload.reset()
    model = payload.path
    if via_card:
        shutil.copy(payload.path, tmp_path / payload.path.name)
        model = card_for(payload, tmp_path)
    result = subprocess.run([sys.executable, "-m", "NeuroRelevanceLib",
                             *_cli_args(command, model, cohort, tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not payload.fired() and not (tmp_path / "out").exists()


def _scan(scene):
    from conftest import oblique_grid
    from NeuroRelevanceLib import mrml

    grid = oblique_grid(shape_kji=(8, 8, 8))
    return mrml.array_to_volume(scene, np.ones(grid.shape_kji, np.float32), grid, "scan")


@pytest.mark.parametrize("name", ALL)
def test_slicer_logic_prepare_refuses_untrusted_files(payloads, name, scene, tmp_path):
    from NeuroRelevanceLib.logic import RelevanceLogic

    payload = payloads[name]
    payload.reset()
    logic = RelevanceLogic(scene)
    volume = _scan(scene)
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError):
        logic.prepare([volume], str(payload.path))
    shutil.copy(payload.path, tmp_path / payload.path.name)
    with pytest.raises(InputError):
        logic.prepare([volume], str(card_for(payload, tmp_path)))
    assert not payload.fired() and scene.GetNumberOfNodes() == before


@pytest.mark.parametrize("name", TRUSTED_RUNS)
def test_slicer_logic_with_trust_hands_the_file_to_torch(payloads, name, scene):
    from NeuroRelevanceLib.logic import RelevanceLogic

    payload = payloads[name]
    payload.reset()
    with contextlib.suppress(InputError, ValueError):  # no card, or the payload broke the model after it ran
        RelevanceLogic(scene).prepare([_scan(scene)], str(payload.path), trusted=True)
    assert payload.fired()
    payload.reset()


@pytest.mark.parametrize("name", ALL)
def test_web_model_selector_refuses_each_file(payloads, name, scene, tmp_path):
    from NeuroRelevanceLib.web.files import FileGate
    from NeuroRelevanceLib.web.session import WebSession

    payload = payloads[name]
    payload.reset()
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(payload.path, root / payload.path.name)
    card = card_for(payload, root)
    session = WebSession(scene, FileGate([root], max_upload=1 << 20))
    try:
        for choice in (payload.path.name, card.name):
            with pytest.raises(InputError) as info:
                session.select_model(choice)
            assert session.model is None
            # trial 2, F9: the web cannot mark a file trusted, so its message must not offer that
            message = str(info.value)
            assert "trusted=True" not in message and "I trust this file" not in message, message
            said = message.replace(payload.path.name, "").lower()  # the file's own name may say "pickle"
            if "pickl" in said or "runs code" in said or "run code" in said or "as code" in said:
                assert "web viewer never loads untrusted pickled files" in message, message
                assert "Slicer module" in message and "Python API" in message, message
    finally:
        session.close()
    assert not payload.fired()
