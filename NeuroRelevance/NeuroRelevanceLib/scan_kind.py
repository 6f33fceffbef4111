"""Is this a scan? Label maps given where a scan belongs (trial 7 F4).

A label map's values are region numbers, not intensities, so a relevance map of it explains nothing.
Where that is certain the input is refused: a label-map volume node (:func:`refuse_label_node`), a NIfTI
file whose header says it holds labels (:func:`refuse_label_intent`). Otherwise :func:`label_map_evidence`
says when a volume looks like one; a run on it goes ahead with a note (a synthetic phantom is a fair scan).

The evidence needs all three of: integer values, at most :data:`MAX_LABELS` distinct values, and most
non-zero voxels inside constant patches (equal to all six neighbours). On the packages' real data, MRI
(int16, uint8) have 0–4 % of their voxels in such patches, every atlas 53–82 % (a coarse
parcellation fewer: the threshold is 20 %).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

#: more distinct values than this is never a label map (the largest shipped atlas, Schaefer 600, has 601)
MAX_LABELS = 1024
#: share of non-zero voxels equal to all six neighbours from which a volume counts as a label map
MIN_CONSTANT_SHARE = 0.2
#: side of the central block (voxels) in which constant patches are counted (cost independent of the scan)
BLOCK = 96
#: NIfTI intent codes that declare a label map
LABEL_INTENTS = {1002: "label", 1003: "neuroname"}
_USE_AS_ATLAS = "a label map belongs in the atlas setting, for region statistics"


def refuse_label_node(node, channel: str = "") -> None:
    """Refuse a label-map volume node (or a segmentation) given as a scan."""
    if node is None or not hasattr(node, "IsA"):
        return
    what = f" for the channel '{channel}'" if channel else ""
    if node.IsA("vtkMRMLLabelMapVolumeNode") or node.IsA("vtkMRMLSegmentationNode"):
        kind = "label map" if node.IsA("vtkMRMLLabelMapVolumeNode") else "segmentation (a label map)"
        raise InputError(f"'{node.GetName()}' was given as the scan{what}, but it is a {kind}: its values are region "
                         f"numbers, not image intensities, so there is nothing to explain. Select the scan itself; "
                         f"{_USE_AS_ATLAS}.")
    if not node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"'{node.GetName()}' ({node.GetClassName()}) was given as the scan{what}; a scalar volume "
                         "(one intensity per voxel) is needed.")


def refuse_label_intent(header, path: str | Path) -> None:
    """Refuse a NIfTI file whose header declares that it holds labels (intent LABEL or NEURONAME)."""
    try:
        code = int(header["intent_code"])
    except (KeyError, TypeError, ValueError):
        return
    if code in LABEL_INTENTS:
        raise InputError(f"{Path(path).name} is a label map (its NIfTI header's intent is "
                         f"'{LABEL_INTENTS[code]}'): its values are region numbers, not image intensities, so "
                         f"there is nothing to explain. Give the scan itself; {_USE_AS_ATLAS}.")


def label_map_evidence(array: np.ndarray) -> str | None:
    """Why ``array`` looks like a label map rather than a scan (a phrase), or None when it does not."""
    array = np.asarray(array)
    sample = array.ravel()[:: max(1, array.size // 1_000_000)]
    if sample.size == 0 or not np.all(np.isfinite(sample)) or not np.array_equal(sample, np.round(sample)):
        return None
    values = np.unique(sample)
    if values.size > MAX_LABELS or values.size < 3:  # 2 values: a mask (refused as constant where it matters)
        return None
    share = constant_share(_central_block(array))
    if share < MIN_CONSTANT_SHARE:
        return None
    return (f"{values.size} distinct integer values, {100 * share:.0f} % of its non-zero voxels in constant "
            "patches")


def constant_share(block: np.ndarray) -> float:
    """Share of the non-zero voxels (away from the border) that equal all six of their neighbours."""
    if min(block.shape) < 3:
        return 0.0
    core = block[1:-1, 1:-1, 1:-1]
    same = core != 0
    for axis in range(3):
        for step in (0, 2):
            index = [slice(1, -1)] * 3
            index[axis] = slice(step, block.shape[axis] - 2 + step)
            same &= block[tuple(index)] == core
    nonzero = int(np.count_nonzero(core))
    return float(np.count_nonzero(same)) / nonzero if nonzero else 0.0


def _central_block(array: np.ndarray) -> np.ndarray:
    starts = [max(0, (n - BLOCK) // 2) for n in array.shape]
    return array[tuple(slice(s, s + BLOCK) for s in starts)]


def scan_notes(channels: list, names: list[str]) -> list[str]:
    """Notes for a run: one per input volume that looks like a label map."""
    notes = []
    for (array, _), name in zip(channels, names, strict=False):
        evidence = label_map_evidence(array)
        if evidence:
            notes.append(f"the scan '{name}' looks like a label map ({evidence}), not an image: its values may be "
                         "region numbers, which a network cannot read as intensities; check that the right "
                         "volume was given")
    return notes
