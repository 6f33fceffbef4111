"""What the web viewer refuses from a browser: foreign origins, tampered state, headers that read other files."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from NeuroRelevanceLib import panel
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.web.files import FileGate, Upload, referenced_data_files
from NeuroRelevanceLib.web.guard import refusal
from NeuroRelevanceLib.web.values import page_values

ATLASES = [panel.NO_ATLAS, "DesikanKilliany"]
TARGETS = [panel.PREDICTED, "control", "AD"]


# ---- origin and host ------------------------------------------------------------------------
@pytest.mark.parametrize("host,origin", [
    ("127.0.0.1:8080", None),                       # a page load typed into the address bar
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),    # the viewer's own page (WebSocket handshake)
    ("localhost:9000", "http://localhost:9000"),
    ("[::1]:8080", "http://[::1]:8080"),
])
def test_own_page_passes(host, origin):
    assert refusal(host, origin, "127.0.0.1") == ""


@pytest.mark.parametrize("host,origin,why", [
    ("127.0.0.1:8080", "http://evil.example", "not allowed"),
    ("127.0.0.1:8080", "null", "not allowed"),                      # sandboxed iframes, file://
    ("127.0.0.1:8080", "http://127.0.0.1:9999", "not allowed"),     # another local app's page
    ("127.0.0.1:8080", "ws://127.0.0.1:8080", "not allowed"),
    ("evil.example:8080", "http://evil.example:8080", "loopback"),  # DNS rebinding
    ("evil.example:8080", None, "loopback"),
])
def test_foreign_pages_are_refused(host, origin, why):
    assert why in refusal(host, origin, "127.0.0.1")


def test_a_public_bind_keeps_the_same_origin_rule():
    assert refusal("viewer.lab:8080", "http://viewer.lab:8080", "0.0.0.0") == ""
    assert refusal("viewer.lab:8080", "http://evil.example", "0.0.0.0") != ""


# ---- state values from the page -------------------------------------------------------------
def _state(**changes):
    values = dict(method="lrp", preset="epsilon-plus", target=panel.PREDICTED, filter_type="pass",
                  filter_range=[0.2, 1.0], filter_placement="input", opacity=0.5, threshold=0.0,
                  positive_only=False, atlas="DesikanKilliany", epsilon=1e-6, gamma=0.25, alpha=1.0,
                  min_overlap=0.5)
    values.update(changes)
    return SimpleNamespace(**values)


def test_page_values_pass_through_panel_settings():
    values = page_values(_state(), atlases=ATLASES, targets=TARGETS)
    settings = panel.run_settings(**values)
    assert settings["filter"] == "pass" and settings["filter_range"] == (0.2, 1.0)
    assert settings["atlas"] == "DesikanKilliany" and settings["target"] is None


@pytest.mark.parametrize("changes,message", [
    ({"atlas": "/etc/passwd"}, "Atlas '/etc/passwd' is not offered"),
    ({"atlas": "../atlas.nii.gz"}, "not offered"),
    ({"method": "os.system"}, "Method 'os.system' is not offered"),
    ({"preset": ["epsilon-plus"]}, "Preset"),
    ({"target": "tumour"}, "Target 'tumour' is not offered"),
    ({"filter_type": "blur"}, "Filter"),
    ({"filter_placement": "everywhere"}, "Placement"),
    ({"epsilon": ""}, "ε must be a number"),
    ({"gamma": "a lot"}, "γ must be a number"),
    ({"alpha": 0.5}, "α = 0.5 must lie in [1, 1000]"),
    ({"opacity": float("nan")}, "Opacity"),
    ({"threshold": 1.5}, "Threshold"),
    ({"filter_range": [0.8, 0.2]}, "reversed"),
    ({"filter_range": "wide"}, "two numbers"),
    ({"filter_range": [0.0, 2.0]}, "α range end"),
    ({"min_overlap": -1}, "Minimum overlap"),
])
def test_tampered_or_unfinished_values_are_refused(changes, message):
    with pytest.raises(InputError, match=_escape(message)):
        page_values(_state(**changes), atlases=ATLASES, targets=TARGETS)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


# ---- headers that name other files ----------------------------------------------------------
def _mha(path, data_file: str):
    path.write_text("ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                    f"ElementDataFile = {data_file}\n")
    return path


def _nrrd(path, data_line: str | None):
    header = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
    if data_line:
        header += data_line + "\n"
    path.write_bytes(header.encode() + b"\n" + bytes(8))
    return path


def test_self_contained_headers_name_no_other_file(tmp_path):
    assert referenced_data_files(_mha(tmp_path / "a.mha", "LOCAL")) == []
    assert referenced_data_files(_nrrd(tmp_path / "a.nrrd", None)) == []
    assert referenced_data_files(tmp_path / "scan.nii.gz") == []  # never opened


def test_detached_headers_name_their_data(tmp_path):
    assert referenced_data_files(_mha(tmp_path / "a.mhd", "/etc/shadow")) == [Path("/etc/shadow")]
    assert referenced_data_files(_nrrd(tmp_path / "b.nhdr", "data file: b.raw")) == [tmp_path / "b.raw"]
    assert referenced_data_files(_nrrd(tmp_path / "c.nrrd", "datafile: ../c.raw")) == [
        tmp_path / "../c.raw"]
    with pytest.raises(InputError, match="list or pattern"):
        referenced_data_files(_nrrd(tmp_path / "d.nhdr", "data file: slice%03d.raw 1 10 1"))
    with pytest.raises(InputError, match="list or pattern"):
        referenced_data_files(_mha(tmp_path / "e.mhd", "LIST"))


@pytest.mark.parametrize("name,writer,line", [
    ("evil.mha", _mha, "/etc/passwd"),
    ("evil.nrrd", _nrrd, "data file: /etc/passwd"),
])
def test_uploads_that_read_other_files_are_refused_and_removed(tmp_path, name, writer, line):
    source = writer(tmp_path / name, line)
    folder = tmp_path / "upload"
    with pytest.raises(InputError, match="takes its voxels from another file"):
        FileGate([tmp_path]).save_upload(Upload(name, source.read_bytes()), folder)
    assert list(folder.iterdir()) == []


def test_server_headers_may_only_read_inside_the_data_folders(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "inside.raw").write_bytes(np.zeros(8, np.uint8).tobytes())
    gate = FileGate([root])
    gate.check_data_files(_nrrd(root / "ok.nhdr", "data file: inside.raw"))
    with pytest.raises(InputError, match="outside the folders"):
        gate.check_data_files(_nrrd(root / "escape.nhdr", "data file: ../outside/secret.raw"))
    with pytest.raises(InputError, match="outside the folders"):
        gate.check_data_files(_mha(root / "abs.mhd", str(outside / "secret.raw")))
