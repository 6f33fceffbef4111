"""The atlas-space check counts tissue a parcellation encloses but leaves unlabelled (white matter)."""
import numpy as np
import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.regions import region_statistics
from volumes import kji


def _shell_atlas():
    """A 'cortex' shell (label 1) around an unlabelled 'white matter' core, inside a larger field."""
    k, j, i = np.mgrid[:30, :30, :30] - 14.5
    r = np.sqrt(i ** 2 + j ** 2 + k ** 2)
    labels = ((r > 8) & (r <= 11)).astype(np.int16)
    return labels, (r <= 8), (r > 12.5), np.eye(4)


def test_relevance_in_enclosed_white_matter_is_inside_the_atlas():
    labels, core, outside, affine = _shell_atlas()
    heat = np.where(core, 1.0, 0.0)
    heat[labels == 1] = 0.1
    table = region_statistics(kji(heat, affine), kji(labels, affine), names={1: "cortex"})
    assert table.attrs["overlap"] == pytest.approx(1.0)
    assert table.loc[table.name == "cortex", "sum"].item() == pytest.approx(0.1 * (labels == 1).sum())


def test_relevance_outside_the_brain_outline_is_refused():
    labels, core, outside, affine = _shell_atlas()
    heat = np.where(outside, 1.0, 0.0)
    with pytest.raises(InputError, match="not in the atlas' space"):
        region_statistics(kji(heat, affine), kji(labels, affine), names={1: "cortex"})
