"""A run's settings are refused in ``prepare`` — before any work, the scene untouched (trial 1, findings 8 and 11).

- A misspelled keyword (``epsilonn=1.0``) reached the method as a raw TypeError after the model ran; now every
  method's misspelled options, misspelled run settings and options of another method are one ``InputError``
  naming the keyword, the closest known name and the method's options — in ``RelevanceLogic.prepare``/``run``,
  ``jobs.Settings.check`` and ``batch.explain_cohort``.
- Invalid region options (``min_overlap=5``, -1, NaN, negative minimum sizes) made a re-run "succeed" without
  its table and deleted the earlier one; now they are refused in ``prepare``, and any run whose requested
  region table cannot be made fails as a whole: the scene (earlier run and its table included) stays as it was.
Real scene (slicer-core), real model, real atlas files; the scene is compared with ``scene_census``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.jobs import Settings
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import halves_atlas, run_scan, tiny_card
from scene_census import census

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: (method, misspelled keyword, the option meant): one or more per method of the panel
TYPOS = [
    ("lrp", "epsilonn", "epsilon"), ("lrp", "gama", "gamma"), ("lrp", "stabiliser", "stabilizer"),
    ("lrp", "pass_trough", "pass_through"), ("lrp", "batchnom", "batchnorm"),
    ("gradient", "mak", "mask"), ("gradient_x_input", "dtyp", "dtype"), ("smoothgrad", "sample", "samples"),
    ("smoothgrad", "sigmaa", "sigma"), ("integrated_gradients", "step", "steps"),
    ("integrated_gradients", "baselin", "baseline"), ("guided_backprop", "maks", "mask"),
    ("gradcam", "layr", "layer"), ("gradcam++", "rleu", "relu"), ("guided_gradcam", "plsu", "plus"),
    ("summary", "normalization", "normalisation"),
    # misspelled settings of the run itself go the same way
    ("lrp", "thresold", "threshold"), ("gradcam", "opacty", "opacity"), ("lrp", "min_overlapp", "min_overlap"),
    ("lrp", "filter_rnage", "filter_range"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(tiny_card(tmp_path_factory.mktemp("model")), device="cpu")


@pytest.fixture(scope="module")
def atlases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("atlas")
    return halves_atlas(folder), halves_atlas(folder, "far", shift_mm=1000.0)  # far: no relevance inside


@pytest.fixture
def scan(scene):
    return run_scan(scene)


@pytest.fixture
def earlier(scene, views, scan, loaded, atlases):
    """A first, successful run with its region table (what a failed re-run must keep)."""
    logic = RelevanceLogic(scene, views)
    run = logic.run([scan], loaded, atlas=atlases[0], min_overlap=0.0)
    assert run.table_node is not None
    return logic, run


# ---- finding 8: keywords -------------------------------------------------------------------------
@pytest.mark.parametrize("method, typo, meant", TYPOS)
def test_a_misspelled_keyword_is_refused_in_prepare_with_a_suggestion(scene, scan, loaded, method, typo, meant):
    logic = RelevanceLogic(scene)
    before = census(scene)
    with pytest.raises(InputError) as info:
        logic.prepare([scan], loaded, method=method, **{typo: 1.0})
    message = str(info.value)
    assert f"'{typo}'" in message and f"did you mean '{meant}'?" in message, message
    assert census(scene) == before


def test_the_message_lists_the_known_options():
    from NeuroRelevanceLib.engine import explain
    import inspect

    with pytest.raises(InputError) as info:
        Settings(engine_params={"epsilonn": 1.0}).check()
    message = str(info.value)
    # independent oracle: the engine's own keyword-only parameters, less those a run sets itself
    own = {"filter", "filter_range", "filter_placement", "device"}
    for name, parameter in inspect.signature(explain).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in own:
            assert name in message, (name, message)
    assert "threshold" in message and "Nothing was run" in message


def test_an_option_of_another_method_is_named_as_such(scene, scan, loaded):
    with pytest.raises(InputError, match="'epsilon' is an option of lrp, not of gradient"):
        RelevanceLogic(scene).prepare([scan], loaded, method="gradient", epsilon=1e-3)
    with pytest.raises(InputError, match="'layer' is an option of .*gradcam.*, not of lrp"):
        RelevanceLogic(scene).prepare([scan], loaded, layer="features.0")


def test_every_known_option_passes_the_check():
    from NeuroRelevanceLib.explanation.keywords import method_options
    from NeuroRelevanceLib.panel import METHODS

    for method in [*METHODS, "summary"]:
        options = method_options(method)
        assert options, method
        Settings(method=method, engine_params=dict.fromkeys(options, None)).check()


def test_a_misspelled_rerun_leaves_the_earlier_run(scene, scan, loaded, earlier):
    logic, run = earlier
    before = census(scene)
    with pytest.raises(InputError, match="epsilonn"):
        logic.run([scan], loaded, atlas=run.job.settings.atlas, epsilonn=1.0)
    assert census(scene) == before


def test_explain_cohort_refuses_a_misspelled_keyword_before_writing(batch_inputs, tmp_path):
    from NeuroRelevanceLib.batch import explain_cohort

    card, table = batch_inputs
    with pytest.raises(InputError, match=r"'epsilonn'.*did you mean 'epsilon'\?"):
        explain_cohort(str(table), card, tmp_path / "out", epsilonn=1.0, device="cpu")
    assert not (tmp_path / "out").exists()


# ---- finding 11: region options and tables ---------------------------------------------------------
BAD_REGION_OPTIONS = [
    ({"min_overlap": 5.0}, "min_overlap"), ({"min_overlap": -1.0}, "min_overlap"),
    ({"min_overlap": math.nan}, "min_overlap"), ({"min_overlap": math.inf}, "min_overlap"),
    ({"min_overlap": 1.0001}, "min_overlap"), ({"min_overlap": "0.5"}, "min_overlap"),
    ({"min_overlap": True}, "min_overlap"), ({"min_region_voxels": -3}, "min_region_voxels"),
    ({"min_region_voxels": math.nan}, "min_region_voxels"), ({"min_region_voxels": math.inf}, "min_region_voxels"),
    ({"min_region_mm3": -0.5}, "min_region_mm3"), ({"min_region_mm3": math.nan}, "min_region_mm3"),
]


@pytest.mark.parametrize("options, name", BAD_REGION_OPTIONS)
def test_bad_region_options_are_refused_in_prepare(scene, scan, loaded, atlases, options, name):
    before = census(scene)
    with pytest.raises(InputError, match=name):
        RelevanceLogic(scene).prepare([scan], loaded, atlas=atlases[0], **options)
    with pytest.raises(InputError, match=name):
        Settings(**options).check()
    assert census(scene) == before


@pytest.mark.parametrize("options, name", BAD_REGION_OPTIONS[:4] + BAD_REGION_OPTIONS[7:8])
def test_a_rerun_with_bad_region_options_keeps_the_earlier_run_and_table(scene, scan, loaded, atlases, earlier,
                                                                         options, name):
    logic, run = earlier
    before = census(scene)
    with pytest.raises(InputError, match=name):
        logic.run([scan], loaded, atlas=atlases[0], **options)
    assert census(scene) == before
    assert run.table_node.GetScene() is scene and run.node.GetScene() is scene


def test_a_rerun_whose_table_cannot_be_made_fails_as_a_whole(scene, scan, loaded, atlases, earlier):
    logic, run = earlier
    before = census(scene)
    with pytest.raises(InputError, match="No region table could be made.*far.*not in the atlas' space") as info:
        logic.run([scan], loaded, atlas=atlases[1])
    assert census(scene) == before
    assert "transform=" not in str(info.value) and "lower min_overlap" in str(info.value)  # a run has no transform


def test_a_first_run_whose_table_cannot_be_made_adds_nothing(scene, scan, loaded, atlases):
    before = census(scene)
    with pytest.raises(InputError, match="atlas=None"):
        RelevanceLogic(scene).run([scan], loaded, atlas=atlases[1])
    assert census(scene) == before
    run = RelevanceLogic(scene).run([scan], loaded)  # the map alone, as the message says
    assert np.abs(mrml.volume_to_array(run.node)[0]).max() > 0 and run.table is None


def test_explain_cohort_refuses_bad_region_options_before_writing(batch_inputs, tmp_path):
    from NeuroRelevanceLib.batch import explain_cohort

    card, table = batch_inputs
    for options in ({"min_overlap": math.nan}, {"min_region_voxels": -3}, {"min_region_mm3": math.inf}):
        with pytest.raises(InputError, match=next(iter(options))):
            explain_cohort(str(table), card, tmp_path / "out", device="cpu", **options)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, name", BAD_REGION_OPTIONS[:3] + BAD_REGION_OPTIONS[7:9])
def test_add_region_table_refuses_bad_options_and_keeps_the_tables(scene, scan, loaded, atlases, earlier,
                                                                   options, name):
    logic, run = earlier
    before = census(scene)
    overlap = options.pop("min_overlap", 0.0)
    with pytest.raises(InputError, match=name):
        logic.add_region_table(run, atlases[0], overlap, **options)
    assert census(scene) == before


def test_a_run_may_keep_its_map_without_the_table_when_asked(scene, scan, loaded, atlases):
    """``table_required=False`` (what batch runs use): the map is added and the run says why there is no table."""
    run = RelevanceLogic(scene).run([scan], loaded, atlas=atlases[1], table_required=False)
    assert run.table is None and "not in the atlas' space" in run.job.table_error
