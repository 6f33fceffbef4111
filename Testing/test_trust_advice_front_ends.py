"""A refusal to run code from a file keeps what was found, with the advice of the front end that shows it.

The library says "mark it trusted (trusted=True)"; the web viewer and the command line cannot mark a file
trusted, so each puts its own advice after the library's finding (``UntrustedFileError.found``), one place
each. The web viewer used to strip the advice with regular expressions, which also dropped sentences of the
finding that contain the word "untrusted" (a .pt2 calling a foreign operator lost what it calls).
"""
from __future__ import annotations

import shutil

import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.models.model_files import UntrustedFileError
from security_payloads import ALL, card_for, payloads_fixture  # noqa: F401  (fixture, registered by import)

pytest.importorskip("slicer")

#: what the library's advice says and neither front end may say (no way to type it there)
LIBRARY_WORDS = ("trusted=True", "'I trust this file'")


def _finding(path) -> str:
    with pytest.raises(UntrustedFileError) as info:
        load_model(path)
    assert any(w in str(info.value) for w in LIBRARY_WORDS)   # the library's own advice
    return info.value.found


def _refused_files(payloads, folder) -> list:
    """Each crafted model file and a card naming it, copied into ``folder``, that the library refuses."""
    import json

    files = []
    for name in ALL:
        payload = payloads[name]
        target = folder / payload.path.name
        shutil.copyfile(payload.path, target)
        files.append(target)
    files.append(card_for(payloads["pickle_plain"], folder, "outside.json"))
    card = json.loads(files[-1].read_text())
    files[-1].write_text(json.dumps(dict(card, weights="../elsewhere.safetensors")))
    foreign = dict(card, weights=payloads["pickle_plain"].path.name,
                   architecture={"class": "collections.OrderedDict"})
    (folder / "foreign.json").write_text(json.dumps(foreign))
    files.append(folder / "foreign.json")
    refused = []
    for path in files:
        try:
            load_model(path)
        except UntrustedFileError:
            refused.append(path)
        except InputError:
            pass
    return refused


def test_the_web_viewer_keeps_the_finding_and_gives_its_own_advice(payloads, scene, tmp_path):
    from NeuroRelevanceLib.web.files import FileGate
    from NeuroRelevanceLib.web.session import WEB_TRUST, WebSession

    root = tmp_path / "data"
    root.mkdir()
    refused = [p for p in _refused_files(payloads, root) if p.suffix.lower() in (".json", ".pt", ".pth", ".ts",
                                                                                 ".pt2")]
    assert len(refused) >= 10 and any("untrusted" in _finding(p) for p in refused)
    web = WebSession(scene, FileGate([root], max_upload=1 << 20))
    try:
        for path in refused:
            found = _finding(path)
            with pytest.raises(InputError) as info:
                web.select_model(path.name)
            message = str(info.value)
            assert found in message, (path.name, message)
            assert message.endswith(WEB_TRUST) and "web viewer" in message
            assert not any(w in message for w in LIBRARY_WORDS), message
            assert web.model is None
    finally:
        web.close()
        for payload in payloads.values():
            payload.reset()


def test_the_command_line_keeps_the_finding_and_names_its_own_steps(payloads, tmp_path, capsys):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.models.model_files import CLI_TRUST_HINT

    files = make_inputs(tmp_path / "in")
    refused = _refused_files(payloads, tmp_path / "in")
    for path in refused[:: max(1, len(refused) // 6)] + refused[-2:]:
        found = _finding(path)
        code = main(["compare", str(files.scans[0]), "--model", str(path), "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"--model: {found}" in err and err.endswith(CLI_TRUST_HINT), err
        assert "load it with trusted=True" not in err and "'I trust this file'" not in err, err


def test_a_refusal_takes_another_front_ends_advice_without_losing_the_finding():
    error = UntrustedFileError("x.pt holds code (an untrusted file may call it).")
    other = error.advised("Do this instead.", "--model: ")
    assert isinstance(other, UntrustedFileError)
    assert str(other) == "--model: x.pt holds code (an untrusted file may call it). Do this instead."
    assert other.found == "--model: x.pt holds code (an untrusted file may call it)."
    assert other.advice == "Do this instead." and "trusted=True" in error.advice
