"""Lesion variant: determinism, lesion effects confined to their masks, channel contrasts, files."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from NeuroRelevanceLib.demo.lesions import (
    CHANNELS,
    generate_lesion_arrays,
    generate_lesion_cohort,
    load_lesion_cohort,
    synthesize_lesion_subject,
)


@pytest.fixture(scope="module")
def subject():
    return synthesize_lesion_subject(3, spacing=3.0, seed=11, channels=CHANNELS, n_lesions=2)


def test_deterministic_and_channel_subsets_agree(subject):
    again = synthesize_lesion_subject(3, spacing=3.0, seed=11, channels=("Tmax", "ADC"),
                                      n_lesions=2)
    np.testing.assert_array_equal(again.lesion, subject.lesion)
    np.testing.assert_array_equal(again.channels[0], subject.channels[CHANNELS.index("Tmax")])
    np.testing.assert_array_equal(again.channels[1], subject.channels[CHANNELS.index("ADC")])
    other = synthesize_lesion_subject(3, spacing=3.0, seed=12, channels=CHANNELS, n_lesions=2)
    assert not np.array_equal(other.lesion, subject.lesion)


def test_lesions_change_nothing_outside_their_mask(subject):
    plain = synthesize_lesion_subject(3, spacing=3.0, seed=11, channels=CHANNELS, n_lesions=2,
                                      lesions=False)
    diff = subject.channels - plain.channels
    assert np.count_nonzero(diff[:, subject.lesion == 0]) == 0
    assert not plain.lesion.any()
    core, pen = subject.lesion == 1, subject.lesion == 2
    assert core.sum() > 10 and pen.sum() > 10
    assert subject.brain[core | pen].all()
    assert subject.info["n_lesions"] == 2
    assert subject.info["core_ml"] == pytest.approx(core.sum() * 0.027)


def test_channels_have_their_lesion_contrast(subject):
    core, pen = subject.lesion == 1, subject.lesion == 2
    plain = synthesize_lesion_subject(3, spacing=3.0, seed=11, channels=CHANNELS, n_lesions=2,
                                      lesions=False)
    change = {name: (subject.channels[c][core].mean() - plain.channels[c][core].mean(),
                     subject.channels[c][pen].mean() - plain.channels[c][pen].mean())
              for c, name in enumerate(CHANNELS)}
    assert change["ADC"][0] < -0.1 and change["ADC"][1] == 0.0  # diffusion: core only
    assert change["rCBF"][0] < change["rCBF"][1] < -5           # perfusion: both, core worse
    assert change["rCBV"][0] < -0.5 and change["rCBV"][1] > 0
    for name in ("MTT", "Tmax", "TTP"):
        assert change[name][0] > change[name][1] > 0.3, name


def test_written_lesion_cohort(tmp_path):
    manifest = generate_lesion_cohort(tmp_path, 2, spacing=3.0, seed=5)
    arrays = generate_lesion_arrays(2, spacing=3.0, seed=5)
    assert arrays.images.shape[:2] == (2, 4)
    assert arrays.channel_names == ("ADC", "rCBF", "rCBV", "Tmax")
    for n, row in manifest.iterrows():
        for c, name in enumerate(arrays.channel_names):
            img = nib.load(tmp_path / row[name])
            np.testing.assert_allclose(img.affine, arrays.grid.ijk_to_ras)
            assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
            np.testing.assert_array_equal(np.asanyarray(img.dataobj), arrays.images[n, c].transpose(2, 1, 0))
        np.testing.assert_array_equal(np.asanyarray(nib.load(tmp_path / row.lesion).dataobj),
                                      arrays.lesions[n].transpose(2, 1, 0))
    pd.testing.assert_series_equal(manifest.core_ml, arrays.table.core_ml)
    desc = json.loads((tmp_path / "lesions.json").read_text())
    assert desc["lesion_labels"] == {"1": "core", "2": "penumbra"}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_lesion_cohort(tmp_path, 2, spacing=3.0, seed=5)
    table = load_lesion_cohort(tmp_path)
    assert nib.load(table.Tmax[1]).shape == arrays.images.shape[2:][::-1]
    with pytest.raises(FileNotFoundError, match="generate_lesion_cohort"):
        load_lesion_cohort(tmp_path / "missing")


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=("ADC", "FLAIR")), "channels"),
    (dict(channels=()), "channels"),
    (dict(n_lesions=0), "n_lesions"),
    (dict(noise=-0.1), "noise"),
])
def test_bad_lesion_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthesize_lesion_subject(0, spacing=3.0, **kwargs)
