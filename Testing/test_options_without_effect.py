"""An option that would change nothing is refused on every front end, with one message, before any work.

The shared run settings (``jobs.Settings``: Slicer logic, web viewer, console) used to accept ``alpha`` with an
ε preset, a filter range without a filter or ``filter_placement="every-layer"`` without a filter and ignore them
silently; only the command line refused them. Which rule parameters a preset uses is read from the preset
registry. The panels (Slicer module, web page) always hold a value in every control: they send only the values
whose control has an effect (``panel.run_settings``), so their untouched or hidden controls never trip the check.
"""
from __future__ import annotations

import pytest

from NeuroRelevanceLib import panel
from NeuroRelevanceLib.engine.presets import PRESETS, preset_alpha, preset_parameters
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.jobs import Settings
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import scan_volume, tiny_card
from scene_census import census

pytestmark = pytest.mark.usefixtures("one_torch_thread")
pytest.importorskip("slicer")

#: a value inside each rule parameter's range, none of them a default
VALUES = {"alpha": 3.0, "epsilon": 0.2, "gamma": 0.3}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(tiny_card(tmp_path_factory.mktemp("model"), preset="alpha1-beta0"), device="cpu")


def _given(name: str) -> dict:
    return {name: VALUES[name]}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", sorted(VALUES))
def test_logic_accepts_a_rule_parameter_exactly_when_the_preset_uses_it(scene, loaded, preset, name):
    used = preset_parameters()[preset]
    volume = scan_volume(scene)
    before = census(scene)
    logic = RelevanceLogic(scene)
    if name in used:
        job = logic.prepare([volume], loaded, preset=preset, **_given(name))
        assert job.settings.preset == preset
        return
    with pytest.raises(InputError) as info:
        logic.prepare([volume], loaded, preset=preset, **_given(name))
    message = str(info.value)
    assert f"{name}=" in message and f"--{name}" not in message and preset in message, message  # a keyword here
    assert "no effect" in message and "\n" not in message
    users = [p for p, params in preset_parameters().items() if name in params]
    assert all(p in message for p in users), message     # the fix: the presets that use it
    assert census(scene) == before


def test_the_cards_preset_is_checked_once_resolved(scene, loaded):
    """No preset given: the card's recommended one (alpha1-beta0 here) decides, after the card is read."""
    assert "epsilon" not in preset_parameters()[loaded.card.recommended_preset]
    with pytest.raises(InputError, match=r"epsilon=.*alpha1-beta0"):
        RelevanceLogic(scene).prepare([scan_volume(scene)], loaded, epsilon=0.2)
    RelevanceLogic(scene).prepare([scan_volume(scene)], loaded, alpha=3.0)


@pytest.mark.parametrize("settings, option", [
    (dict(filter_range=(0.2, 0.5)), "filter_range="),
    (dict(filter=None, filter_range=(0.0, 0.9)), "filter_range="),
    (dict(filter="none", filter_placement="every-layer"), "filter_placement="),
    (dict(method="gradient", alpha=2.0), "alpha="),
    (dict(method="gradcam", alpha=2.0), "alpha="),
    (dict(method="gradient", preset="deep-taylor"), "preset="),
    (dict(method="gradcam++", preset="epsilon"), "preset="),
    (dict(method="summary", preset="alpha2-beta1", methods=["gradient", "guided_backprop"]), "preset="),
    (dict(preset="alpha2-beta1", alpha=3.0, rules={}), "alpha="),
])
def test_logic_refuses_other_options_without_effect(scene, loaded, settings, option):
    volume = scan_volume(scene)
    before = census(scene)
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([volume], loaded, **settings)
    assert option in str(info.value) and "no effect" in str(info.value), str(info.value)
    assert census(scene) == before


def test_settings_say_the_same_as_the_command_line(tmp_path, capsys):
    """One message per mistake: the command line prints the shared settings' refusal, with its flags."""
    from cli_inputs import make_inputs
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.models import read_card

    files = make_inputs(tmp_path / "in")
    card = read_card(files.classifier)
    for flags, settings in ((["--preset", "epsilon", "--alpha", "3"], Settings(preset="epsilon", alpha=3.0)),
                            (["--filter-range", "0.2", "0.5"], Settings(filter_range=(0.2, 0.5)))):
        with pytest.raises(InputError) as info:
            settings.check().resolve(card)
        code = main(["explain", str(files.scans[0]), "--model", str(files.classifier), "--output",
                     str(tmp_path / "e"), "--quiet", "--atlas", "none", *flags])
        err = capsys.readouterr().err
        assert code == 2 and info.value.spelled("flag") in err, (err, str(info.value))
        assert str(info.value) not in err, err


# ---- the panels: what they send never trips the check -------------------------------------------------
def _panel(**changes) -> dict:
    values = dict(method="lrp", preset="epsilon-plus", target=None, filter_type="none", filter_low=0.0,
                  filter_high=1.0, filter_placement="input", opacity=0.5, threshold=0.1, positive_only=False,
                  atlas=None, epsilon=1e-6, gamma=0.25, alpha=1.0)
    values.update(changes)
    return values


@pytest.mark.parametrize("method", ["lrp", "gradient"])
@pytest.mark.parametrize("filter_type", ["none", "pass"])
def test_panel_values_of_every_control_are_accepted_and_only_the_effective_ones_sent(scene, loaded, method,
                                                                                     filter_type):
    """Every preset with every control moved off its start value (also those the preset or the missing
    filter leaves without effect): the run is accepted, and the settings hold only what has an effect."""
    volume = scan_volume(scene)
    for preset in PRESETS:
        values = _panel(method=method, preset=preset, filter_type=filter_type, filter_low=0.2, filter_high=0.8,
                        filter_placement="every-layer" if method == "lrp" else "input",
                        epsilon=0.5, gamma=0.7, alpha=4.0)
        sent = panel.run_settings(**values)
        job = RelevanceLogic(scene).prepare([volume], loaded, **sent)
        s = job.settings
        used = preset_parameters()[preset] if method == "lrp" else ()
        assert ("epsilon" in s.engine_params) == ("epsilon" in used), (preset, s.engine_params)
        assert ("gamma" in s.engine_params) == ("gamma" in used), (preset, s.engine_params)
        assert (s.alpha is not None) == (method == "lrp" and preset in preset_alpha()), (preset, s.alpha)
        if filter_type == "none":
            assert s.filter is None and s.filter_range == (0.0, 1.0) and s.filter_placement == "input"
        else:
            assert s.filter == "pass" and s.filter_range == (0.2, 0.8)
        # untouched controls: the start values of the panel never trip it either
        RelevanceLogic(scene).prepare([volume], loaded, **panel.run_settings(**_panel(method=method, preset=preset)))


def test_panel_controls_follow_the_preset_registry():
    for preset in PRESETS:
        active = panel.active_controls("lrp", preset, "pass")
        for name in ("epsilon", "gamma"):
            assert (name in active) == (name in preset_parameters()[preset]), (preset, name)
        assert ("alpha" in active) == (preset in preset_alpha()), preset
        assert {"filter_range", "filter_placement"} <= active
    assert not {"epsilon", "gamma", "alpha", "filter_range", "filter_placement"} & \
        panel.active_controls("gradient", "epsilon-gamma-box", "none")


def test_the_web_session_runs_with_hidden_controls_moved(scene, tmp_path):
    """The web page's values (checked like the browser's) with the hidden controls moved: accepted."""
    from NeuroRelevanceLib.web.files import FileGate
    from NeuroRelevanceLib.web.session import WebSession
    from web_session_helpers import panel_values, upload_item, write_oblique_nifti

    write_oblique_nifti(tmp_path / "scan.nii.gz")
    web = WebSession(scene, FileGate([tmp_path], max_upload=64 * 1024))
    try:
        web.load_upload(upload_item(tmp_path / "scan.nii.gz"))
        web.select_model("bundled:ad_cnn")
        job = web.prepare(panel_values(preset="epsilon", alpha=3.0, gamma=0.7, filter_low=0.2,
                                       filter_placement="every-layer"))
        s = job.settings
        assert s.alpha is None and "gamma" not in s.engine_params and s.filter_range == (0.0, 1.0)
        assert s.filter_placement == "input" and s.engine_params.get("epsilon") == 1e-6
    finally:
        web.close()


def test_a_method_without_presets_runs_without_the_cards_preset(scene, loaded):
    """The card's recommended preset is an LRP choice: another method neither gets it nor records it."""
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, method="gradient")
    assert run.job.settings.preset is None and run.record["preset"] is None
    assert "alpha1-beta0" not in run.node.GetName()


def test_the_panel_sends_no_preset_with_a_method_without_presets(scene, loaded):
    sent = panel.run_settings(**_panel(method="gradcam", preset="deep-taylor"))
    assert sent["preset"] is None
    RelevanceLogic(scene).prepare([scan_volume(scene)], loaded, **sent)
