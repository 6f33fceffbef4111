"""Options that would change nothing are refused, as the filter range without a filter already was; refusals
name options as each front end spells them; a broken atlas file is refused before any subject runs.

Trial 8 findings: ``explain --atlas none --min-overlap 0.9`` (or ``--min-region-voxels``, ``--min-region-mm3``,
``--gain-on``), ``RelevanceLogic.run(atlas=None, min_overlap=0.9)``, ``regions --gain-on absolute`` without a
reference group, ``compare --methods lrp gradient --layer nosuch`` and ``compare --ground-truth-labels 1``
without ``--ground-truth`` all ran as if the option were not there. ``--filter-range 0.5 0.2`` and a folder
made with other settings answered in library spelling (``filter_range``, ``min_overlap:``); a bad
``filter_range`` raised a bare ValueError; ``explain_cohort(atlas=None)`` suggested 'atlas' for 'atlas';
``RelevanceLogic.run(epsilon=-1)`` named ``explain()``; ``explain --atlas <broken file>`` computed and wrote
the map and then said "Nothing was run".
"""
from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest

from cli_inputs import error_line, make_inputs
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.vocabulary import OptionError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a command-line flag ("--alpha") and a keyword as the library spells it ("alpha=", "min_overlap:")
FLAG = re.compile(r"(?<![\w-])--[a-z]")
KEYWORD = re.compile(r"\b[a-z]+_[a-z_]+\b[=:]")


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    files = make_inputs(tmp_path_factory.mktemp("effect2"))
    labels = np.zeros((20, 22, 18), np.int16)
    labels[:10], labels[10:] = 1, 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-20, -22, -18)
    image = nib.Nifti1Image(labels, affine)
    shifted = affine.copy()
    shifted[0, 3] += 5.0
    image.set_qform(affine, code=1)
    image.set_sform(shifted, code=1)  # qform and sform 5 mm apart: refused by every reader of this package
    files.broken_atlas = files.folder / "broken_atlas.nii.gz"
    nib.save(image, files.broken_atlas)
    return files


def _explain(f, out, *extra):
    return ["explain", str(f.scans[0]), "--model", str(f.classifier), "--output", str(out), "--quiet",
            "--target", "AD", *extra]


# ---- item 1: options without effect, command line -------------------------------------------
@pytest.mark.parametrize("extra, named", [
    (["--atlas", "none", "--min-overlap", "0.9"], "--min-overlap 0.9"),
    (["--atlas", "none", "--min-region-voxels", "50"], "--min-region-voxels 50"),
    (["--atlas", "none", "--min-region-mm3", "100"], "--min-region-mm3 100"),
    (["--atlas", "none", "--gain-on", "absolute"], "--gain-on absolute"),
    (["--gain-on", "absolute"], "--gain-on absolute"),   # an atlas, but no reference group: no gain
])
def test_explain_refuses_region_options_without_effect(f, tmp_path, capsys, extra, named):
    code = main(_explain(f, tmp_path / "e", *extra))
    line = error_line(capsys)
    assert code == 2, line
    assert named in line and "no effect" in line, line
    assert not KEYWORD.search(line), line
    assert not (tmp_path / "e").exists()


def test_explain_defaults_do_not_count_as_given(f, tmp_path, capsys):
    """--atlas none with every region option left at its default runs (nothing typed, nothing refused)."""
    assert main(_explain(f, tmp_path / "e", "--atlas", "none", "--no-png")) == 0, capsys.readouterr().err


def test_regions_refuses_gain_on_without_a_reference(f, tmp_path, capsys):
    code = main(["regions", str(f.scans[0]), "--atlas",
                 str(f.folder / "atlas.nii.gz"), "--gain-on", "absolute"])
    line = error_line(capsys)
    assert code == 2 and "--gain-on absolute" in line and "--reference" in line, line
    assert not KEYWORD.search(line), line


@pytest.mark.parametrize("extra, named", [
    (["--methods", "lrp", "gradient", "--layer", "nosuch"], "--layer nosuch"),
    (["--methods", "lrp", "--ground-truth-labels", "1"], "--ground-truth-labels 1"),
])
def test_compare_refuses_options_without_effect(f, tmp_path, capsys, extra, named):
    code = main(["compare", str(f.scans[0]), "--model", str(f.classifier), "--steps", "2", *extra])
    line = error_line(capsys)
    assert code == 2, line
    assert named in line and "no effect" in line, line


def test_compare_unknown_layer_tells_a_command_line_user_the_names(f, capsys):
    code = main(["compare", str(f.scans[0]), "--model", str(f.classifier), "--steps", "2",
                 "--methods", "gradcam", "--layer", "nosuch"])
    line = error_line(capsys)
    assert code == 2, line
    assert "--layer" in line and "named_modules" not in line, line
    from NeuroRelevanceLib.models import load_model

    convs = [n for n, m in load_model(f.classifier, device="cpu").model.named_modules()
             if type(m).__name__ == "Conv3d"]
    assert all(repr(name) in line for name in convs), line   # every name a CLI user can pass


# ---- item 1: options without effect, library ------------------------------------------------
@pytest.mark.parametrize("keywords, named", [
    (dict(min_overlap=0.9), "min_overlap=0.9"),
    (dict(min_region_voxels=50.0), "min_region_voxels=50.0"),
    (dict(min_region_mm3=100.0), "min_region_mm3=100.0"),
])
def test_the_logic_refuses_region_options_without_an_atlas(scene, f, keywords, named):
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import scan_volume
    from scene_census import census

    volume = scan_volume(scene)
    before = census(scene)
    with pytest.raises(OptionError) as info:
        RelevanceLogic(scene).run([volume], str(f.classifier), atlas=None, **keywords)
    message = str(info.value)
    assert named in message and "no effect" in message and not FLAG.search(message), message
    assert census(scene) == before


def test_the_panel_sends_no_overlap_without_an_atlas(scene, f):
    """The web page and the Slicer panel always hold a minimum overlap (the web's is 0.2): with atlas
    "none" it must not reach the run as if typed."""
    from NeuroRelevanceLib import panel
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import scan_volume

    values = dict(method="lrp", preset="epsilon-plus", target=None, filter_type="none", filter_low=0.0,
                  filter_high=1.0, filter_placement="input", opacity=0.5, threshold=0.05, positive_only=False,
                  atlas="none", epsilon=1e-6, gamma=0.25, alpha=1.0, min_overlap=0.2)
    RelevanceLogic(scene).prepare([scan_volume(scene)], str(f.classifier), **panel.run_settings(**values))


@pytest.mark.parametrize("keywords, named", [
    (dict(atlases=(), min_overlap=0.9), "min_overlap=0.9"),
    (dict(atlases=(), min_region_voxels=50), "min_region_voxels=50"),
    (dict(gain_on="absolute"), "gain_on='absolute'"),
])
def test_explain_cohort_refuses_region_options_without_effect(f, tmp_path, keywords, named):
    from NeuroRelevanceLib.batch import explain_cohort

    with pytest.raises(OptionError) as info:
        explain_cohort([str(f.scans[0])], f.classifier, tmp_path / "e", target="AD", **keywords)
    message = str(info.value)
    assert named in message and "no effect" in message and not FLAG.search(message), message
    assert not (tmp_path / "e").exists()


# ---- item 2: command-line spelling ----------------------------------------------------------
def test_a_reversed_filter_range_is_an_option_error_in_every_spelling(scene, f, tmp_path, capsys):
    code = main(_explain(f, tmp_path / "e", "--atlas", "none", "--filter", "pass", "--filter-range", "0.5", "0.2"))
    line = error_line(capsys)
    assert code == 2 and "--filter-range 0.5 0.2" in line and "filter_range" not in line, line
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import scan_volume

    logic = RelevanceLogic(scene)
    volume = scan_volume(scene)
    with pytest.raises(OptionError) as info:   # the same class as every other option refusal
        logic.run([volume], str(f.classifier), filter="pass", filter_range=(0.5, 0.2))
    assert isinstance(info.value, (InputError, ValueError))
    assert "filter_range=(0.5, 0.2)" in str(info.value), info.value
    run = logic.run([volume], str(f.classifier), atlas=None)
    with pytest.raises(OptionError):
        logic.refilter(run, "pass", (0.5, 0.2))


def test_a_folder_of_other_settings_is_described_in_flags(f, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(_explain(f, out, "--atlas", str(f.folder / "atlas.nii.gz"), "--min-overlap", "0.1",
                         "--no-png")) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(_explain(f, out, "--atlas", str(f.folder / "atlas.nii.gz"), "--min-overlap", "0.2",
                         "--epsilon", "0.5"))
    line = error_line(capsys)
    assert code == 2, line
    assert "--min-overlap" in line and "--epsilon" in line and "--no-png" in line and "--overwrite" in line, line
    assert not KEYWORD.search(line) and "engine_params" not in line, line
    from NeuroRelevanceLib.batch import explain_cohort

    with pytest.raises(OptionError) as info:   # the library keeps its keywords
        explain_cohort([str(f.scans[0])], f.classifier, out, target="AD", atlases=(str(f.folder / "atlas.nii.gz"),),
                       min_overlap=0.2)
    assert "min_overlap" in str(info.value) and not FLAG.search(str(info.value)), info.value


# ---- item 3: library messages ---------------------------------------------------------------
@pytest.mark.parametrize("keyword, meant", [("atlas", "atlases"), ("atlass", "atlases"), ("overwrit", "overwrite")])
def test_explain_cohort_suggests_its_own_keywords(f, tmp_path, keyword, meant):
    from NeuroRelevanceLib.batch import explain_cohort

    with pytest.raises(InputError) as info:
        explain_cohort([str(f.scans[0])], f.classifier, tmp_path / "e", **{keyword: None})
    message = str(info.value)
    assert f"did you mean '{meant}'?" in message, message
    listed = message.split("the run's own settings are", 1)[-1]
    assert not re.search(r"\batlas\b(?!es)", listed), message  # 'atlas' is RelevanceLogic.run's keyword, not this one's


@pytest.mark.parametrize("name", ["epsilon", "gamma"])
def test_a_negative_rule_parameter_names_the_call_the_user_made(scene, f, tmp_path, name):
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import scan_volume

    preset = "epsilon-gamma-box"
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([scan_volume(scene)], str(f.classifier), preset=preset, **{name: -1.0})
    assert "explain()" not in str(info.value) and f"{name}=" in str(info.value), info.value
    with pytest.raises(InputError) as info:
        explain_cohort([str(f.scans[0])], f.classifier, tmp_path / "e", preset=preset, **{name: -1.0})
    assert "explain()" not in str(info.value), info.value
    assert not (tmp_path / "e").exists()


# ---- item 4: a broken atlas file is refused before any subject runs -------------------------
def test_explain_refuses_a_broken_atlas_file_before_the_work(f, tmp_path, capsys):
    code = main(_explain(f, tmp_path / "e", "--atlas", str(f.broken_atlas)))
    line = error_line(capsys)
    assert code == 2 and "--atlas" in line and "qform" in line, line
    assert not (tmp_path / "e").exists()


def test_the_library_refuses_a_broken_atlas_file_before_the_work(scene, f, tmp_path):
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.logic import RelevanceLogic
    from reading_helpers import scan_volume
    from scene_census import census

    with pytest.raises(InputError, match="qform"):
        explain_cohort([str(f.scans[0])], f.classifier, tmp_path / "e", atlases=(str(f.broken_atlas),))
    assert not (tmp_path / "e").exists()
    logic = RelevanceLogic(scene)
    volume = scan_volume(scene)
    before = census(scene)
    with pytest.raises(InputError, match="qform"):
        logic.prepare([volume], str(f.classifier), atlas=str(f.broken_atlas))
    assert census(scene) == before
