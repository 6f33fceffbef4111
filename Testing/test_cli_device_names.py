"""``--device`` takes torch's own spellings of the CPU and of CUDA devices on every command.

auto, cpu, cpu:0, cuda, cuda:N (as ``torch.device`` writes them); anything else is one line naming the
spellings, and a CUDA device on a machine without CUDA (or beyond its GPUs) says so. ``cpu:0`` used to be
refused as an "unknown device" although torch (and the library's ``device=``) take it.
"""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib.cli_arguments import device_argument
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ACCEPTED = ["auto", "cpu", "cpu:0", "cuda", "cuda:0", "cuda:3", "cuda:12"]
REFUSED = ["", "gpu", "CPU", "Cuda", "cpu:1", "cpu:", "cuda:", "cuda:-1", "cuda:01", "cuda: 1", "cuda:0,1",
           "mps", "meta", "cuda:0 ", "auto:0"]


@pytest.mark.parametrize("name", ACCEPTED)
def test_torch_spellings_are_known(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the test machine may have a GPU
    if name != "auto":
        assert torch.device(name).type in ("cpu", "cuda")             # oracle: torch takes the spelling
    if name.startswith("cuda"):
        with pytest.raises(InputError, match="no CUDA device is available here"):
            device_argument(name)
    else:
        device_argument(name)


@pytest.mark.parametrize("name", REFUSED)
def test_other_names_are_refused_naming_the_spellings(name):
    with pytest.raises(InputError) as info:
        device_argument(name)
    message = str(info.value)
    assert message.startswith(f"--device {name}: unknown device") and "\n" not in message, message
    for spelling in ("auto", "cpu", "cpu:0", "cuda", "cuda:N"):
        assert spelling in message, message


def test_a_cuda_index_beyond_the_gpus_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    device_argument("cuda:1")
    with pytest.raises(InputError, match=r"--device .*cuda:0 to cuda:1"):
        device_argument("cuda:2")


def test_commands_run_on_cpu_0(tmp_path, capsys):
    """The same spelling through a whole command (explain) and through the batch options of the library."""
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.batch.options import BatchOptions
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.models import read_card

    files = make_inputs(tmp_path / "in")
    BatchOptions(device="cpu:0", atlases=()).checked(read_card(files.classifier))
    code = main(["explain", str(files.scans[0]), "--model", str(files.classifier), "--output", str(tmp_path / "e"),
                 "--quiet", "--atlas", "none", "--device", "cpu:0", "--no-png"])
    assert code == 0, capsys.readouterr().err
    assert list((tmp_path / "e").rglob("*.nii.gz"))
