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
    ("evil.example:8080", "http://evil.example:8080", "not a name"),  # DNS rebinding
    ("evil.example:8080", None, "not a name"),
])
def test_foreign_pages_are_refused(host, origin, why):
    assert why in refusal(host, origin, "127.0.0.1")


def test_a_public_bind_accepts_this_machine_and_ip_addresses_only():
    names = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "viewer.lab"}
    assert refusal("viewer.lab:8080", "http://viewer.lab:8080", "0.0.0.0", names) == ""
    assert refusal("10.1.2.3:8080", "http://10.1.2.3:8080", "0.0.0.0", names) == ""
    assert refusal("viewer.lab:8080", "http://evil.example", "0.0.0.0", names) != ""
    # DNS rebinding: a foreign name that resolves to this machine, with its own origin
    assert "not a name of this machine" in refusal("evil.example:8080", "http://evil.example:8080",
                                                   "0.0.0.0", names)


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
    ({"epsilon": ""}, "ε must be a number (got ''); type e.g. 1e-6"),
    ({"gamma": "a lot"}, "γ must be a number"),
    ({"alpha": 0.5}, "α = 0.5 must lie in [1, 10]"),
    ({"opacity": float("nan")}, "Opacity"),
    ({"threshold": 1.5}, "Threshold"),
    ({"filter_range": [0.8, 0.2]}, "reversed"),
    ({"filter_range": "wide"}, "two numbers"),
    ({"filter_range": [0.0, 2.0]}, "Filter range end"),
    ({"min_overlap": -1}, "Minimum overlap"),
    ({"positive_only": "false"}, "must be true or false"),
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
    assert not folder.exists()  # the file and the folder made for it are gone


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


# ---- headers written to slip past a naive check (found in review) -----------------------------
def test_metaimage_colon_separator_is_seen(tmp_path):
    header = tmp_path / "colon.mha"
    header.write_text("ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                      "ElementDataFile : /etc/passwd\n")
    assert referenced_data_files(header) == [Path("/etc/passwd")]


def test_nrrd_data_file_after_many_comments_is_seen(tmp_path):
    header = tmp_path / "pad.nrrd"
    header.write_bytes(b"NRRD0004\n" + b"# pad\n" * 12000 + b"type: uchar\ndimension: 3\n"
                       b"sizes: 2 2 2\nencoding: raw\ndata file: /etc/passwd\n\n")
    assert referenced_data_files(header) == [Path("/etc/passwd")]


@pytest.mark.parametrize("name,lines", [
    # a decoy spelling the reader skips, then the line it takes (found in review)
    ("decoy.mha", ["elementdatafile = LOCAL", "ElementDataFile = /etc/passwd"]),
    ("decoy2.mha", ["ELEMENTDATAFILE = LOCAL", "ElementDataFile = /etc/passwd"]),
    ("decoy3.mha", ["Element DataFile = LOCAL", "ElementDataFile = /etc/passwd"]),
    ("decoy4.mha", ["\xa0ElementDataFile = LOCAL", "ElementDataFile = /etc/passwd"]),
    ("decoy5.mha", ["  ElementDataFile = LOCAL", "ElementDataFile = /etc/passwd"]),
    ("upper.nrrd", ["DATA FILE: /etc/passwd"]),
    ("spaced.nrrd", ["data  file: /etc/passwd"]),
])
def test_lookalike_data_file_lines_are_refused(tmp_path, name, lines):
    header = tmp_path / name
    if name.endswith(".mha"):
        text = "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
    else:
        text = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
    header.write_bytes((text + "\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(InputError, match="ambiguous line"):
        referenced_data_files(header)
    with pytest.raises(InputError):  # the whole upload route refuses it too
        FileGate([tmp_path]).save_upload(Upload(name, header.read_bytes()), tmp_path / "u")


def test_whitespace_only_line_does_not_end_a_nrrd_header(tmp_path):
    header = tmp_path / "ws.nrrd"
    header.write_bytes(b"NRRD0004\ntype: uchar\n \ndata file: /etc/passwd\n\n")
    assert referenced_data_files(header) == [Path("/etc/passwd")]


def test_header_without_an_end_within_the_limit_is_refused(tmp_path):
    from NeuroRelevanceLib.web import headers

    header = tmp_path / "long.mhd"
    fields = "".join(f"Foo{i} = bar\n" for i in range(headers.MAX_HEADER_BYTES // 10))
    header.write_text("ObjectType = Image\n" + fields + "ElementDataFile = /etc/passwd\n")
    with pytest.raises(InputError, match="no end of its header"):
        referenced_data_files(header)


def test_metaimage_without_element_data_file_is_refused(tmp_path):
    header = tmp_path / "none.mha"
    header.write_text("ObjectType = Image\nNDims = 3\n")
    with pytest.raises(InputError, match="no ElementDataFile"):
        referenced_data_files(header)


def test_value_with_separator_characters_is_parsed_at_the_first_one(tmp_path):
    header = tmp_path / "sep.mha"
    header.write_text("ObjectType = Image\nElementDataFile : /tmp/a=b/secret.raw\n")
    assert referenced_data_files(header) == [Path("/tmp/a=b/secret.raw")]
