"""Compact-atrophy variant of the generator: the same effects in solid balls instead of ribbons.

The ribbon pattern (default) puts AD-like and age-related loss into whole atlas regions: cortical
ribbons one or two voxels thick at 2-4 mm, whose ground truth no heatmap can hit exactly (a
one-voxel blur of the true change already loses half of its mass). The compact pattern keeps the
*places* and the *volumes* and changes only the *shape*: each group of regions
(``COMPACT_GROUPS``, per hemisphere) is replaced by one solid ball centred on the group's centroid,
whose radius is chosen so that the ball holds as many brain voxels of the 1 mm template as the
group itself. Inside a ball a fraction of all tissue turns into fluid (grey and white matter
alike), so the change covers the ball rather than only its grey matter.

Template-space map values: 0 outside, :data:`AD_LABEL` in AD balls, :data:`AGE_GM_LABEL` in
age balls (the labels of :mod:`.atrophy`); an AD ball wins where two balls overlap.

The *focal* age pattern (``AtrophyParams(age_pattern="focal")``, :func:`focal_age_map`) confines
age-related loss to one small ball per hemisphere at the centroid of the prefrontal group (superior,
rostral and caudal middle frontal), each holding :data:`FOCAL_AGE_SHARE` of the template brain: the
prefrontal cortex is where grey matter declines most with age, and a small solid target keeps the
age mask (with the ventricle shell) a few per cent of the brain, so a heatmap can score far above chance.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from .anatomy import load_anatomy
from .atrophy import AD_LABEL, AGE_GM_LABEL

#: region groups that become one ball per hemisphere (Desikan-Killiany / AAL3 names)
COMPACT_GROUPS: dict[str, dict[int, tuple[tuple[str, ...], ...]]] = {
    "desikan-killiany": {
        AD_LABEL: (("hippocampus", "amygdala", "entorhinal", "parahippocampal"),
                   ("temporalpole", "inferiortemporal", "middletemporal")),
        AGE_GM_LABEL: (("superiorfrontal", "rostralmiddlefrontal", "caudalmiddlefrontal"),
                       ("superiorparietal", "inferiorparietal")),
    },
    "aal3": {
        AD_LABEL: (("Hippocampus", "Amygdala", "ParaHippocampal"),
                   ("Temporal_Pole_Sup", "Temporal_Pole_Mid", "Temporal_Inf", "Temporal_Mid")),
        AGE_GM_LABEL: (("Frontal_Sup_2", "Frontal_Mid_2"), ("Parietal_Sup", "Parietal_Inf")),
    },
}


#: focal age pattern: share of the template brain in each hemisphere's prefrontal ball
FOCAL_AGE_SHARE = 0.005


def equal_volume_ball(brain: np.ndarray, centre_vox: np.ndarray, n_voxels: int) -> np.ndarray:
    """Brain voxels within the smallest radius around ``centre_vox`` that holds ``n_voxels`` of them
    (voxels tied at that radius are all kept)."""
    grid = np.indices(brain.shape, dtype=np.float32)
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre_vox.astype(np.float32), strict=True)))
    inside = np.sort(dist[brain])
    radius = inside[min(int(n_voxels), inside.size) - 1]
    return brain & (dist <= radius)


def _hemisphere_ids(names: dict[int, str], group: tuple[str, ...], side: str) -> list[int]:
    """Ids of ``group``'s regions on one side (``"_L"``/``"_R"`` suffix)."""
    wanted = {f"{n}{side}" for n in group}
    return [i for i, n in names.items() if n in wanted]


@lru_cache(maxsize=2)
def compact_map(atlas: str = "desikan-killiany") -> np.ndarray:
    """The compact pattern on the template's 1 mm grid (uint8, read-only; cached)."""
    anat = load_anatomy(atlas)
    out = np.zeros(anat.labels.shape, dtype=np.uint8)
    for label in (AGE_GM_LABEL, AD_LABEL):  # AD last: it wins overlaps
        for group in COMPACT_GROUPS[atlas][label]:
            for side in ("_L", "_R"):
                ids = _hemisphere_ids(anat.names, group, side)
                region = np.isin(anat.labels, ids) & anat.brain
                if not region.any():
                    raise RuntimeError(f"no voxel of {group} ({side[1]}) inside the template brain")
                centre = np.array(ndi.center_of_mass(region))
                out[equal_volume_ball(anat.brain, centre, int(region.sum()))] = label
    out.setflags(write=False)
    return out


@lru_cache(maxsize=2)
def focal_age_map(atlas: str = "desikan-killiany") -> np.ndarray:
    """The focal age pattern on the template's 1 mm grid: True in one ball per hemisphere at the
    prefrontal group's centroid, each holding ``FOCAL_AGE_SHARE`` of the brain (bool, read-only; cached)."""
    anat = load_anatomy(atlas)
    out = np.zeros(anat.labels.shape, dtype=bool)
    group = COMPACT_GROUPS[atlas][AGE_GM_LABEL][0]   # the prefrontal group
    n_voxels = int(round(FOCAL_AGE_SHARE * int(anat.brain.sum())))
    for side in ("_L", "_R"):
        region = np.isin(anat.labels, _hemisphere_ids(anat.names, group, side)) & anat.brain
        if not region.any():
            raise RuntimeError(f"no voxel of {group} ({side[1]}) inside the template brain")
        out |= equal_volume_ball(anat.brain, np.array(ndi.center_of_mass(region)), n_voxels)
    out.setflags(write=False)
    return out
