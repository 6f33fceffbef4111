"""Left/right pooling of regions by name ("Hippocampus_L" + "Hippocampus_R" -> "Hippocampus").

Recognised hemisphere markers (case-insensitive): prefixes ``Left``/``Right``/``lh``/``rh``
followed by a space, ``_``, ``-`` or ``.`` (``Left-Hippocampus``, ``Right Amygdala``, ``lh.insula``),
FreeSurfer's ``ctx-lh-``/``wm-rh-`` infixes, and suffixes ``_L``/``_R``/``_left``/``_right``/``-lh``
(``Precentral_L``) or ``(L)``/``(R)``. Names without a marker are left as they are.
"""
from __future__ import annotations

import re

import numpy as np

_RULES = (
    re.compile(r"^(?P<pre>(?:ctx|wm))[-_](?P<side>lh|rh)[-_](?P<base>.+)$", re.IGNORECASE),
    re.compile(r"^(?P<side>left|right|lh|rh)[\s_.-]+(?P<base>.+)$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)\s*\((?P<side>l|r|left|right)\)$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)[\s_.-]+(?P<side>l|r|left|right|lh|rh)$", re.IGNORECASE),
)


def split_hemisphere(name: str) -> tuple[str, str | None]:
    """``(base name, 'L' | 'R' | None)`` for a region name."""
    for rule in _RULES:
        match = rule.match(name.strip())
        if match:
            side = "L" if match.group("side").lower().startswith("l") else "R"
            base = match.group("base")
            if "pre" in rule.groupindex:
                base = f"{match.group('pre')}-{base}"
            return base, side
    return name, None


def pooling_groups(names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Map each region to a pooled group: ``(group index per region, group names)``.

    Regions whose names differ only by their hemisphere marker share a group named by the base
    name; every other region keeps its own group and name. Group order follows first appearance.
    """
    keys: dict[str, int] = {}
    group_names: list[str] = []
    index = np.empty(len(names), dtype=np.intp)
    for i, name in enumerate(names):
        base, side = split_hemisphere(name)
        key = base.lower() if side else f"\0{name}"
        if key not in keys:
            keys[key] = len(group_names)
            group_names.append(base if side else name)
        index[i] = keys[key]
    return index, group_names
