"""The model-card schema: every field checked in one place, each error naming its field; the card
checked against its network (output type and size) and its architecture against the weights'
shapes before anything is allocated; generated cards load correctly or raise one clear error."""
import contextlib
import copy
import json
import math
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.models import card_from_dict, load_model, read_card, save_weights
from NeuroRelevanceLib.nets import build, spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(n_outputs=2):
    return build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=n_outputs, channels=(4, 8))


def _base(net=None, **changes) -> dict:
    card = {"name": "tiny", "architecture": spec(net or _net()), "weights": "net.safetensors",
            "input": {"channels": ["T1"], "shape": [16, 16, 16], "spacing": [2.0, 2.0, 2.0],
                      "orientation": "RAS", "normalization": {"type": "percentile", "low": 1, "high": 99}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "intended_use": "tests", "limitations": "tests only"}
    card.update(changes)
    return card


def _set(card: dict, dotted: str, value) -> dict:
    card = copy.deepcopy(card)
    *parents, last = dotted.split(".")
    node = card
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return card


def _refused(card: dict, *fragments: str) -> str:
    with pytest.raises(InputError) as info:
        card_from_dict(card)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---- one finding each -------------------------------------------------------------------------
@pytest.mark.parametrize("classes,fragment", [
    ("CNAD", "output.classes"), (["AD", "AD"], "more than once"), (["AD", ""], "output.classes"),
    ([1, 2], "output.classes"), ({"a": 1}, "output.classes")])
def test_class_names_are_a_list_of_unique_names(classes, fragment):
    _refused(_set(_base(), "output.classes", classes), fragment)


def test_inverted_or_out_of_range_percentiles_are_refused():
    for low, high in ((99, 1), (50, 50), (-1, 99), (1, 101), ("1", 99), (float("nan"), 99)):
        card = _set(_set(_base(), "input.normalization.low", low), "input.normalization.high", high)
        _refused(card, "input.normalization")


def test_percentile_bounds_only_with_percentile_normalisation():
    card = _set(_base(), "input.normalization", {"type": "zscore", "low": 1})
    _refused(card, "input.normalization.low", "percentile")


def test_unknown_keys_are_refused_with_the_known_ones_and_a_suggestion():
    message = _refused(_base(mask="brain"), '"mask"', "known fields", "weights")
    assert "did you mean" not in message.split('"mask"')[1].split(";")[0]
    _refused(_base(wieghts="x"), "did you mean 'weights'")
    _refused(_set(_base(), "input.spacingg", [1, 1, 1]), "input.spacingg", "did you mean 'spacing'")
    _refused(_set(_base(), "output.clases", ["a"]), "did you mean 'classes'")
    _refused(_set(_base(), "input.normalization.mask", "brain"), "input.normalization.mask")
    _refused(_set(_base(), "architecture.kwarg", {}), "did you mean 'kwargs'")


@pytest.mark.parametrize("field,value", [
    ("input.spacing", [2.0, float("nan"), 2.0]), ("input.spacing", [2.0, float("inf"), 2.0]),
    ("input.spacing", [0, 2, 2]), ("input.spacing", [2, 2]), ("input.spacing", [True, 2, 2]),
    ("input.origin", [0.0, float("-inf"), 0.0]), ("input.origin", [0, 0]), ("input.origin", "centre"),
    ("input.shape", [16, 16]), ("input.shape", [16, 16, 0]), ("input.shape", [16, 16, 2.5]),
    ("input.shape", [16, 16, True]), ("input.shape", [4096, 4096, 4096]),
    ("input.orientation", "RAR"), ("input.orientation", "XYZ"), ("input.orientation", 3),
    ("input.channels", []), ("input.channels", ["T1", "T1"]), ("input.channels", "T1"),
    ("output.type", "banana"), ("output.units", 3), ("recommended_preset", "nope"),
    ("weights", ""), ("weights", 3), ("metrics", [1, 2]), ("metrics", {"auc": float("nan")})])
def test_each_bad_field_is_named(field, value):
    _refused(_set(_base(), field, value), field)


def test_non_finite_numbers_in_the_json_file_are_refused(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps(_base()).replace('"spacing": [2.0, 2.0, 2.0]',
                                                 '"spacing": [2.0, NaN, Infinity]'))
    with pytest.raises(InputError, match="input.spacing"):
        read_card(path)


def test_regression_card_names_at_most_one_output():
    _refused(_set(_set(_base(), "output.type", "regression"), "output.classes", ["age", "mmse"]),
             "output.classes", "regression")


# ---- the card against its network and weights ----------------------------------------------
def is_written(tmp_path, card: dict, net=None):
    save_weights(net or _net(), tmp_path / "net.safetensors")
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_regression_card_on_a_two_output_network_is_refused(tmp_path):
    card = _set(_set(_base(), "output.type", "regression"), "output.classes", [])
    with pytest.raises(InputError, match="regression.*2 values per scan"):
        load_model(is_written(tmp_path, card), device="cpu")


def test_three_names_for_two_outputs_are_refused(tmp_path):
    card = _set(_base(), "output.classes", ["CN", "MCI", "AD"])
    with pytest.raises(InputError, match="names 3 .* returns 2"):
        load_model(is_written(tmp_path, card), device="cpu")


def test_segmentation_card_on_a_classifier_is_refused(tmp_path):
    card = _set(_base(), "output.type", "segmentation")
    with pytest.raises(InputError, match="segmentation"):
        load_model(is_written(tmp_path, card), device="cpu")


def test_input_the_network_cannot_take_is_refused_at_load(tmp_path):
    card = _set(_base(), "input.channels", ["T1", "T2"])
    with pytest.raises(InputError, match="does not accept the card's input"):
        load_model(is_written(tmp_path, card), device="cpu")
    card = _set(_base(), "input.shape", [2, 2, 2])  # smaller than the net's pooling levels
    with pytest.raises(InputError, match="does not accept the card's input"):
        load_model(is_written(tmp_path, card), device="cpu")


def test_oversized_architecture_fails_fast_with_the_mismatch(tmp_path):
    card = _set(_base(), "architecture.kwargs.channels", [2048, 2048])
    path = is_written(tmp_path, card)
    assert path.stat().st_size < 2048
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        load_model(path, device="cpu")
    assert time.perf_counter() - start < 3.0
    message = str(info.value)
    assert "does not fit" in message and "[2048, 1, 3, 3, 3] in the architecture but [4, 1, 3, 3, 3]" \
        in message


def test_oversized_architecture_allocates_nothing_big(tmp_path):
    """Peak memory of a fresh process loading the 1 KB card asking for 2048-channel layers."""
    card = _set(_base(), "architecture.kwargs.channels", [2048, 2048])
    path = is_written(tmp_path, card)
    code = ("import resource, torch\n"
            "from NeuroRelevanceLib.models import load_model\n"
            "from NeuroRelevanceLib.errors import InputError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"try:\n    load_model({str(path)!r}, device='cpu')\nexcept InputError:\n    pass\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-1500:]
    grown_mb = float(result.stdout.strip().splitlines()[-1])
    assert grown_mb < 200, f"loading the refused card grew the process by {grown_mb:.0f} MB"


def test_global_rng_is_untouched_by_loading(tmp_path):
    path = is_written(tmp_path, _base())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(path, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_bundled_cards_pass_the_schema_and_load():
    from NeuroRelevanceLib.pretrained import available_models, model_card_path

    for name in available_models():
        loaded = load_model(model_card_path(name), device="cpu")
        assert loaded.card.name == name


# ---- generated cards: load correctly or one clear error -------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
_FIELDS = ["name", "weights", "architecture", "architecture.class", "architecture.kwargs",
           "architecture.kwargs.channels", "architecture.kwargs.n_outputs", "architecture.kwargs.pool",
           "input", "input.channels", "input.shape", "input.spacing", "input.origin",
           "input.orientation", "input.normalization", "input.normalization.type",
           "input.normalization.low", "input.normalization.high", "input.normalization.mask",
           "output", "output.type", "output.classes", "output.units", "metrics", "recommended_preset",
           "intended_use", "limitations", "extra", "input.extra", "output.extra"]
_SENSIBLE = {
    "input.shape": st.lists(st.integers(1, 40), min_size=3, max_size=3),
    "output.classes": st.lists(st.sampled_from(["a", "b", "c", "AD"]), max_size=3),
    "output.type": st.sampled_from(["classification", "regression", "segmentation"]),
    "input.channels": st.lists(st.sampled_from(["T1", "T2", "FLAIR"]), min_size=1, max_size=2),
    "architecture.kwargs.n_outputs": st.integers(1, 3),
    "architecture.kwargs.channels": st.lists(st.integers(1, 8), min_size=1, max_size=3),
    "input.normalization.type": st.sampled_from(["none", "zscore", "minmax", "percentile"]),
    "input.spacing": st.lists(st.floats(-1, 8), min_size=3, max_size=3),
    "input.origin": st.lists(st.floats(-200, 200), min_size=3, max_size=3),
    "input.normalization.low": st.floats(-5, 105),
    "input.normalization.high": st.floats(-5, 105),
    "input.orientation": st.sampled_from(["RAS", "LPS", "ras", "RSA", "RAR", "IPL"]),
    "architecture.class": st.sampled_from(["DeepTaylorCNN", "UNet3d", "PreActResNet3d",
                                           "NeuroRelevanceLib.nets.DeepTaylorCNN", "subprocess.run"]),
    "architecture.kwargs.pool": st.sampled_from(["avg", "max", "none"]),
    "recommended_preset": st.sampled_from(["epsilon-plus", "deep-taylor", "alpha1-beta0"]),
}


@st.composite
def cards(draw, sensible_only: bool = False):
    """The base card with up to three fields replaced (by plausible values, or any JSON)."""
    card = _base()
    fields = sorted(_SENSIBLE) if sensible_only else _FIELDS
    for field in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        sensible = _SENSIBLE.get(field)
        value = draw(sensible if sensible_only else st.one_of(sensible, sensible, _JSON)
                     if sensible is not None else _JSON)
        with contextlib.suppress(TypeError, AttributeError):  # a parent was already replaced by a non-object
            card = _set(card, field, value)
    return card


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards())
def test_generated_cards_parse_or_raise_one_clear_error(card):
    try:
        parsed = card_from_dict(card)
    except InputError as exc:
        assert "\n" not in str(exc) and '"' in str(exc)  # names the field it is about
        return
    assert len(parsed.input.channels) == len(set(parsed.input.channels)) >= 1
    if parsed.input.spacing is not None:
        assert all(math.isfinite(s) and s > 0 for s in parsed.input.spacing)
    if parsed.output.type == "regression":
        assert len(parsed.output.classes) <= 1


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    save_weights(_net(), folder / "net.safetensors")
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(card=st.one_of(cards(), cards(sensible_only=True)))
def test_generated_cards_load_correctly_or_raise_one_clear_error(card, weights_dir):
    path = weights_dir / "card.json"
    path.write_text(json.dumps(card))
    try:
        loaded = load_model(path, device="cpu")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    # loaded: the card must agree with the network it describes
    x = torch.zeros((1, len(loaded.card.input.channels), *(loaded.card.input.shape or (16, 16, 16))))
    with torch.no_grad():
        out = loaded.model(x)
    if loaded.card.output.classes:
        assert out.shape[1] == len(loaded.card.output.classes)
    if loaded.card.output.type == "regression":
        assert out.shape[1] == 1


@pytest.mark.parametrize("card", [
    {"name": {"\n": float("inf")}},
    {"name": "x", "metrics": {"auc\nline": float("nan")}},
    {"name": "x", "training": {"a": [1.0, {"b\r\nc": float("-inf")}]}},
])
def test_field_names_with_line_breaks_stay_on_one_line(card):
    """A key holding a line break is quoted JSON-style, so the error stays one line (found by hypothesis)."""
    with pytest.raises(InputError) as info:
        card_from_dict(card)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


def test_scale_normalisation_takes_a_high_percentile_only():
    card_from_dict(_set(_base(), "input.normalization", {"type": "scale", "high": 99, "mask": "nonzero"}))
    card_from_dict(_set(_base(), "input.normalization", {"type": "scale"}))
    _refused(_set(_base(), "input.normalization", {"type": "scale", "low": 1, "high": 99}),
             "input.normalization.low", "percentile")
    for high in (0, -1, 101, "99", float("nan")):
        _refused(_set(_base(), "input.normalization", {"type": "scale", "high": high}), "input.normalization.high")


def test_scale_floor_is_a_fraction_below_one_and_only_for_scale():
    card_from_dict(_set(_base(), "input.normalization", {"type": "scale", "high": 99, "floor": 0.4}))
    for floor in (-0.1, 1.0, "0.4", float("nan")):
        _refused(_set(_base(), "input.normalization", {"type": "scale", "floor": floor}), "input.normalization.floor")
    _refused(_set(_base(), "input.normalization", {"type": "percentile", "floor": 0.4}), "floor", "scale")


def test_scale_invert_is_a_boolean_and_only_for_scale():
    card_from_dict(_set(_base(), "input.normalization", {"type": "scale", "invert": True}))
    _refused(_set(_base(), "input.normalization", {"type": "scale", "invert": 1}), "input.normalization.invert")
    _refused(_set(_base(), "input.normalization", {"type": "zscore", "invert": True}), "invert", "scale")
