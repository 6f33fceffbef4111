"""register_preset refuses what would silently change or break explanations (trial 3, #14): replacing a
registered preset (a built-in "epsilon-plus" redefined as ε while records still said epsilon-plus) unless
``replace=True``, unknown rule names (found only when a run used them) and an empty or non-text name."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.engine import explain, presets
from NeuroRelevanceLib.engine.presets import GraphPreset, Preset, register_preset


def _model_and_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 ** 3, 2)).eval()
    return model, torch.rand(1, 1, 6, 6, 6)


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_an_existing_name_is_not_replaced_silently(name):
    model, x = _model_and_input()
    before = explain(model, x, preset="epsilon-plus").relevance
    original = presets.get_preset(name)
    with pytest.raises(ValueError, match=f"'{name}' is already registered.*replace=True"):
        register_preset(Preset(name, "hijack", conv="epsilon", dense="epsilon"))
    assert presets.get_preset(name) is original
    assert torch.equal(before, explain(model, x, preset="epsilon-plus").relevance)


def test_replace_true_replaces_and_the_original_can_be_restored():
    original = presets.get_preset("epsilon")
    replacement = Preset("epsilon", "ε, replaced on purpose", conv="epsilon", dense="epsilon", parameters=("epsilon",))
    try:
        assert register_preset(replacement, replace=True) is replacement
        assert presets.get_preset("epsilon") is replacement
        assert presets.PRESETS.index("epsilon") == list(presets.PRESET_REGISTRY).index("epsilon")
    finally:
        register_preset(original, replace=True)
    assert presets.get_preset("epsilon") is original


@pytest.mark.parametrize("field,value", [("conv", "zplsu"), ("dense", "nope"), ("first", "zbx"),
                                         ("first_with_bounds", "box")])
def test_unknown_rule_names_are_refused_at_registration(field, value):
    kwargs = dict(conv="epsilon", dense="epsilon")
    kwargs[field] = value
    with pytest.raises(ValueError, match=f"unknown rule '{value}'.*zplus"):
        register_preset(Preset("typo-preset", "typo", **kwargs))
    assert "typo-preset" not in presets.PRESETS


def test_rule_names_are_matched_as_make_rule_reads_them():
    added = register_preset(Preset("spelled-rules", "spellings", conv="Alpha1-Beta0", dense="ε", first="w_square"))
    try:
        model, x = _model_and_input()
        assert torch.isfinite(explain(model, x, preset="spelled-rules").relevance).all()
    finally:
        presets.unregister_preset(added.name)


@pytest.mark.parametrize("name", ["", "   ", None, 3, "None"])
def test_an_empty_or_non_text_name_is_refused(name):
    with pytest.raises(ValueError, match="name"):
        register_preset(Preset(name, "no name", conv="epsilon", dense="epsilon"))
    assert name not in presets.PRESET_REGISTRY


def test_a_graph_preset_needs_a_registered_base():
    with pytest.raises(ValueError, match="base preset 'nonexistent'"):
        register_preset(GraphPreset("graph-x", "bad base", "zplus", "epsilon", base="nonexistent"))


def test_every_built_in_preset_names_known_rules():
    from NeuroRelevanceLib.engine.rules import RULE_NAMES

    for preset in presets.PRESET_REGISTRY.values():
        for rule in (preset.conv, preset.dense, preset.first, preset.first_with_bounds):
            assert rule is None or presets._rule_key(rule) in RULE_NAMES, (preset.name, rule)
