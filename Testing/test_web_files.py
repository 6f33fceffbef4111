"""The web viewer's file gate: which server paths may be read, and what an upload must look like.

Everything runs on real files in ``tmp_path`` (real symbolic links, real model cards and weights);
the oracles are the file system itself (``os.path.realpath``, what exists on disk afterwards) and
the rules stated in the issue: nothing outside the ``--data`` folders, uploads only inside the
session's folder under a safe name.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml.storage import VOLUME_SUFFIXES
from NeuroRelevanceLib.web.files import MODEL_SUFFIXES, FileGate, Upload, safe_name

VOLUME = "volume file"


@pytest.fixture
def roots(tmp_path):
    """Two allowed folders and one forbidden sibling, each holding a (fake) volume file."""
    first, second, outside = (tmp_path / n for n in ("data", "more", "outside"))
    for folder in (first, second, outside):
        folder.mkdir()
    (first / "sub").mkdir()
    (first / "sub" / "a.nii.gz").write_bytes(b"a")
    (second / "b.nrrd").write_bytes(b"b")
    (outside / "secret.nii.gz").write_bytes(b"s")
    return first, second, outside


def _gate(roots, **kw) -> FileGate:
    return FileGate([roots[0], roots[1]], **kw)


# ---- construction -----------------------------------------------------------------------------
def test_missing_root_is_refused_naming_it_and_data(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match="--data") as info:
        FileGate([tmp_path, missing])
    assert str(missing) in str(info.value)


def test_a_file_is_not_a_root(tmp_path):
    (tmp_path / "f.nii").write_bytes(b"x")
    with pytest.raises(InputError, match="not found"):
        FileGate([tmp_path / "f.nii"])


def test_roots_are_resolved_through_symlinks(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    gate = FileGate([tmp_path / "alias"])
    assert gate.roots == [Path(os.path.realpath(real))]
    assert str(real) in gate.describe()


# ---- resolving typed paths --------------------------------------------------------------------
def test_relative_path_is_found_in_any_root(roots):
    gate = _gate(roots)
    assert gate.resolve("sub/a.nii.gz", VOLUME_SUFFIXES, VOLUME) == roots[0] / "sub" / "a.nii.gz"
    assert gate.resolve("  b.nrrd  ", VOLUME_SUFFIXES, VOLUME) == roots[1] / "b.nrrd"


def test_absolute_path_inside_a_root_is_accepted(roots):
    path = roots[1] / "b.nrrd"
    assert _gate(roots).resolve(str(path), VOLUME_SUFFIXES, VOLUME) == path


def test_suffix_check_ignores_case(roots):
    (roots[0] / "UPPER.NII.GZ").write_bytes(b"u")
    assert _gate(roots).resolve("UPPER.NII.GZ", VOLUME_SUFFIXES, VOLUME).name == "UPPER.NII.GZ"


def test_absolute_path_outside_is_refused_naming_data(roots):
    with pytest.raises(InputError, match="--data") as info:
        _gate(roots).resolve(str(roots[2] / "secret.nii.gz"), VOLUME_SUFFIXES, VOLUME)
    assert "outside" in str(info.value)


def test_sibling_folder_sharing_the_root_prefix_is_outside(roots, tmp_path):
    """``/x/data2`` starts with the string ``/x/data`` but is not inside it."""
    sibling = tmp_path / (roots[0].name + "2")
    sibling.mkdir()
    (sibling / "c.nii").write_bytes(b"c")
    assert str(sibling).startswith(str(roots[0]))  # the trap a string-prefix check falls into
    gate = _gate(roots)
    assert not gate.allows(sibling / "c.nii")
    with pytest.raises(InputError, match="--data"):
        gate.resolve(str(sibling / "c.nii"), VOLUME_SUFFIXES, VOLUME)


@pytest.mark.parametrize("typed", ["../outside/secret.nii.gz", "sub/../../outside/secret.nii.gz"])
def test_dotdot_traversal_is_refused(roots, typed):
    gate = _gate(roots)
    assert (roots[0] / typed).resolve().is_file()  # the file really is there, just not allowed
    with pytest.raises(InputError):
        gate.resolve(typed, VOLUME_SUFFIXES, VOLUME)


def test_absolute_dotdot_traversal_is_refused_naming_data(roots):
    typed = f"{roots[0]}/../outside/secret.nii.gz"
    with pytest.raises(InputError, match="--data"):
        _gate(roots).resolve(typed, VOLUME_SUFFIXES, VOLUME)


def test_symlink_inside_a_root_pointing_outside_is_refused(roots):
    link = roots[0] / "link.nii.gz"
    link.symlink_to(roots[2] / "secret.nii.gz")
    gate = _gate(roots)
    for typed in ("link.nii.gz", str(link)):
        with pytest.raises(InputError):
            gate.resolve(typed, VOLUME_SUFFIXES, VOLUME)


def test_symlinked_folder_inside_a_root_pointing_outside_is_refused(roots):
    (roots[0] / "escape").symlink_to(roots[2], target_is_directory=True)
    with pytest.raises(InputError):
        _gate(roots).resolve("escape/secret.nii.gz", VOLUME_SUFFIXES, VOLUME)


def test_symlink_inside_a_root_pointing_inside_is_followed(roots):
    (roots[1] / "alias.nii.gz").symlink_to(roots[0] / "sub" / "a.nii.gz")
    found = _gate(roots).resolve("alias.nii.gz", VOLUME_SUFFIXES, VOLUME)
    assert found == Path(os.path.realpath(roots[1] / "alias.nii.gz"))


def test_relative_escape_names_the_cause_and_data(roots):
    (roots[0] / "link.nii.gz").symlink_to(roots[2] / "secret.nii.gz")
    with pytest.raises(InputError, match="--data"):
        _gate(roots).resolve("link.nii.gz", VOLUME_SUFFIXES, VOLUME)


@pytest.mark.parametrize("typed", ["scan\0.nii", "a" * 300 + ".nii", "~no-such-user-xyz/scan.nii"],
                         ids=["nul-byte", "name-too-long", "unknown-user"])
def test_unusable_typed_paths_give_an_input_error(roots, typed):
    with pytest.raises(InputError):
        _gate(roots).resolve(typed, VOLUME_SUFFIXES, VOLUME)


def test_wrong_suffix_is_refused_naming_the_kinds(roots):
    (roots[0] / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not a volume file \(\.nii") as info:
        _gate(roots).resolve("notes.txt", VOLUME_SUFFIXES, VOLUME)
    assert ".nrrd" in str(info.value)


@pytest.mark.parametrize("typed, message", [("", "Type the path"), ("   ", "Type the path"),
                                            ("missing.nii", "No such volume file"),
                                            ("sub", "No such volume file")])
def test_empty_missing_and_folder_paths(roots, typed, message):
    with pytest.raises(InputError, match=message):
        _gate(roots).resolve(typed, VOLUME_SUFFIXES, VOLUME)


# ---- model cards ------------------------------------------------------------------------------
def _bundled_card() -> Path:
    from NeuroRelevanceLib.pretrained import model_card_path

    return Path(model_card_path("ad_cnn"))


def _card_in(folder: Path, weights: str) -> Path:
    card = json.loads(_bundled_card().read_text())
    card["weights"] = weights
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_check_model_accepts_weights_beside_the_card(roots):
    from NeuroRelevanceLib.models import read_card

    shutil.copy(_bundled_card().with_suffix(".safetensors"), roots[0] / "w.safetensors")
    card = read_card(_card_in(roots[0], "w.safetensors"))
    _gate(roots).check_model(card)  # no error


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_check_model_refuses_weights_outside_the_roots(roots, how):
    from NeuroRelevanceLib.models import read_card

    weights = roots[2] / "w.safetensors"
    shutil.copy(_bundled_card().with_suffix(".safetensors"), weights)
    if how == "absolute":
        named = str(weights)
    elif how == "dotdot":
        named = "../outside/w.safetensors"
    else:
        (roots[0] / "w.safetensors").symlink_to(weights)
        named = "w.safetensors"
    card = read_card(_card_in(roots[0], named))
    assert card.weights_path.is_file()  # the weights exist: only their place is wrong
    with pytest.raises(InputError, match="outside the allowed folders") as info:
        _gate(roots).check_model(card)
    assert "card.json" in str(info.value)


def test_model_suffixes_are_resolved_like_volumes(roots):
    (roots[0] / "m.pt").write_bytes(b"m")
    assert _gate(roots).resolve("m.pt", MODEL_SUFFIXES, "model file") == roots[0] / "m.pt"
    with pytest.raises(InputError, match="not a model file"):
        _gate(roots).resolve("sub/a.nii.gz", MODEL_SUFFIXES, "model file")


# ---- uploads ----------------------------------------------------------------------------------
def test_upload_from_client_joins_chunks():
    upload = Upload.from_client({"name": "x.nii", "content": [b"ab", b"cd"], "size": 4})
    assert upload == Upload("x.nii", b"abcd")
    assert Upload.from_client({"name": "y.nii", "content": bytearray(b"q")}).content == b"q"


@pytest.mark.parametrize("item", [None, "x.nii", {}, {"content": b"x"}, {"name": "x.nii"},
                                  {"name": "x.nii", "content": "text, not bytes"}])
def test_upload_from_client_refuses_incomplete_items(item):
    with pytest.raises(InputError, match="choose the file again"):
        Upload.from_client(item)


@pytest.mark.parametrize("name, expected", [
    ("../../evil.nii.gz", "evil.nii.gz"), ("..\\..\\evil.nii.gz", "evil.nii.gz"),
    ("/etc/passwd", "passwd"), (".hidden.nii", "hidden.nii"), ("..", "upload"), ("", "upload"),
    ("dir/", "upload"), ("my scan (1).nii", "my_scan__1_.nii"), ("scän.nrrd", "sc_n.nrrd")])
def test_safe_name_examples(name, expected):
    assert safe_name(name) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_safe_name_stays_in_its_folder(name):
    cleaned = safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", cleaned) and not cleaned.startswith(".")
    folder = Path("/srv/uploads/session")
    assert os.path.normpath(folder / cleaned).startswith(str(folder) + os.sep)


def test_overlong_upload_name_is_shortened_keeping_its_suffix(tmp_path):
    path = FileGate([tmp_path]).save_upload(Upload("a" * 300 + ".nii.gz", b"x"), tmp_path / "u")
    assert path.name.endswith(".nii.gz") and len(path.name) <= 255 and path.read_bytes() == b"x"


def test_traversal_upload_is_written_only_inside_the_folder(tmp_path):
    folder = tmp_path / "a" / "b" / "session"
    path = FileGate([tmp_path]).save_upload(Upload("../../evil.nii.gz", b"payload"), folder)
    assert path == folder / "evil.nii.gz" and path.read_bytes() == b"payload"
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert written == [folder / "evil.nii.gz"]


@pytest.mark.parametrize("upload, message", [
    (Upload("scan.nii.gz", b""), "is empty"),
    (Upload("scan.nii.gz", b"x" * 1025), "uploads are limited"),
    (Upload("photo.png", b"x"), "not a volume file"),
    (Upload("scan", b"x"), "not a volume file"),
    (Upload("scan.nhdr", b"NRRD0004\n"), "header whose voxels live in another file"),
    (Upload("scan.MHD", b"ObjectType = Image\n"), "header whose voxels live in another file"),
])
def test_bad_uploads_are_refused_and_nothing_is_written(tmp_path, upload, message):
    folder = tmp_path / "session"
    with pytest.raises(InputError, match=message) as info:
        FileGate([tmp_path], max_upload=1024).save_upload(upload, folder)
    assert upload.name in str(info.value)
    assert not folder.exists()


def test_oversize_message_suggests_data(tmp_path):
    with pytest.raises(InputError, match="--data"):
        FileGate([tmp_path], max_upload=10).save_upload(Upload("s.nii", b"x" * 11), tmp_path / "u")


def test_upload_at_the_size_limit_is_accepted(tmp_path):
    path = FileGate([tmp_path], max_upload=16).save_upload(Upload("s.nii.gz", b"x" * 16), tmp_path / "u")
    assert path.read_bytes() == b"x" * 16
