"""A bundled demo model's bare name where a model file is expected: the refusal gives the card's path."""
import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.pretrained import MODELS, model_card_path


@pytest.mark.parametrize("name", [m for m in MODELS] + ["ad_cnn.json"])
def test_load_model_names_the_bundled_card(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = name.removesuffix(".json")
    with pytest.raises(InputError, match="bundled demo model") as info:
        load_model(name, device="cpu")
    assert str(model_card_path(bare)) in str(info.value)


def test_the_command_line_names_the_bundled_card(tmp_path, monkeypatch, capsys):
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main

    files = make_inputs(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    code = main(["explain", str(files.scans[0]), "--model", "ad_cnn", "--output", str(tmp_path / "e"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and str(model_card_path("ad_cnn")) in err, err


def test_other_missing_files_keep_the_plain_message(tmp_path):
    with pytest.raises(InputError, match=r"No such model file: .*nothing\.json\.$"):
        load_model(tmp_path / "nothing.json", device="cpu")
