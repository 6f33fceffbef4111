"""A ceiling-referenced, multi-metric ground-truth report: methods × scores beside oracle and chance.

A score means little alone: the AD-like mask of the demo cohort is a ribbon one or two voxels
thick, so even the true change map blurred by one voxel keeps only half of its mass in it. The
report therefore puts every method's scores (:mod:`.groundtruth`) beside

- the **oracle** at blur sigma = 0, 1, 2 voxels: the true change map ``|subject - twin|`` (its
  effect-free twin), Gaussian-blurred; without a change map, the mask itself stands in for it;
- **chance**: what a map that knows nothing about the mask scores (mask share, 0.5 for AUC, ...),

and reads a method's score as a fraction of the ceiling (:func:`fraction_of_ceiling`).

    report = ground_truth_report({"lrp": maps1, "gradcam": maps2}, masks, brains=brains,
                                 changes=changes, atlases=atlases)
    print(report.markdown())
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .groundtruth import GroundTruth, oracle_maps

CHANCE = "chance"
SIGMAS = (0.0, 1.0, 2.0)


def oracle_name(sigma: float) -> str:
    """Row name of the oracle at blur ``sigma`` (voxels)."""
    return f"oracle σ={sigma:g}"


def reference_rows(truth: GroundTruth, change: Any = None, sigmas: Sequence[float] = SIGMAS, *,
                   mask: Any = None, channel_axis: int | None = None) -> list[dict]:
    """Rows ``{"method": "oracle σ=s", scores...}`` for each sigma, then the chance row.

    ``change``: the true change map (subject minus effect-free twin); None uses ``mask`` as the
    oracle (then say so: it is the label, not the change the generator made).
    """
    source = change if change is not None else np.asarray(mask, dtype=np.float64)
    rows = []
    for sigma, oracle in oracle_maps(source, tuple(sigmas), channel_axis=channel_axis).items():
        rows.append({"method": oracle_name(sigma), **truth.score(oracle)})
    rows.append({"method": CHANCE, **truth.chance()})
    return rows


def score_columns(table: pd.DataFrame) -> list[str]:
    """The ground-truth score columns present in ``table``, in report order."""
    out: list[str] = []
    for name in ("mass_accuracy", "mass_accuracy_", "rank_accuracy", "auc_brain", "pointing_",
                 "region_precision"):
        if name.endswith("_"):  # the tolerance scores, e.g. mass_accuracy_1vox
            out += sorted(c for c in table.columns if c.startswith(name) and c.endswith("vox"))
        elif name in table.columns:
            out.append(name)
    return out


def fraction_of_ceiling(table: pd.DataFrame, sigma: float = 1.0) -> pd.DataFrame:
    """Each method's score divided by the oracle's at ``sigma`` (per metric; oracle rows dropped)."""
    cols = score_columns(table)
    ceiling = table.loc[oracle_name(sigma), cols]
    methods = [m for m in table.index if not str(m).startswith("oracle")]
    return table.loc[methods, cols] / ceiling


@dataclass
class GroundTruthReport:
    """``per_subject``: one row per (subject, method or reference); ``table``: means per row name;
    ``sd``: standard deviations over subjects; ``notes``: what was left out and why."""

    per_subject: pd.DataFrame
    table: pd.DataFrame
    sd: pd.DataFrame
    notes: list = field(default_factory=list)

    def fraction_of_ceiling(self, sigma: float = 1.0) -> pd.DataFrame:
        return fraction_of_ceiling(self.table, sigma)

    def markdown(self, digits: int = 3, with_sd: bool = True) -> str:
        """The table as Markdown: mean ± sd for methods, oracle and chance rows as they are."""
        return markdown_table(self.table, self.sd if with_sd else None, digits)


def markdown_table(table: pd.DataFrame, sd: pd.DataFrame | None = None, digits: int = 3) -> str:
    """Markdown of the score columns of ``table`` (rows: methods, oracles, chance)."""
    cols = score_columns(table)
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in table[cols].iterrows():
        cells = []
        for c in cols:
            v = row[c]
            text = "–" if v != v else f"{v:.{digits}f}"
            if sd is not None and name in sd.index and v == v and not str(name).startswith(
                    ("oracle", CHANCE)) and sd.loc[name, c] == sd.loc[name, c]:
                text += f" ± {sd.loc[name, c]:.{digits}f}"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise(per_subject: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and sd per row name, in order of first appearance, references last."""
    data = per_subject.drop(columns=[c for c in ("subject",) if c in per_subject.columns])
    grouped = data.groupby("method", sort=False)
    mean, sd = grouped.mean(numeric_only=True), grouped.std(ddof=0, numeric_only=True)
    order = ([m for m in mean.index if not str(m).startswith(("oracle", CHANCE))]
             + sorted(m for m in mean.index if str(m).startswith("oracle")) + [CHANCE])
    order = [m for m in order if m in mean.index]
    return mean.loc[order], sd.loc[order]


def ground_truth_report(maps: Mapping[str, Sequence[Any]], masks: Sequence[Any], *,
                        brains: Sequence[Any] | None = None, changes: Sequence[Any] | None = None,
                        atlases: Sequence[Any] | None = None, sigmas: Sequence[float] = SIGMAS,
                        tolerance: int = 1, names: Sequence[str] | None = None,
                        channel_axis: int | None = None) -> GroundTruthReport:
    """Score precomputed heatmaps: ``maps[method][i]`` is subject ``i``'s map (same grid as its mask).

    ``brains``: scoring domains; ``changes``: true change maps for the oracle; ``atlases``: label
    maps for region precision (each a list with one entry per subject, or None).
    """
    n = len(masks)
    for method, items in maps.items():
        if len(items) != n:
            raise ValueError(f"{method}: {len(items)} maps for {n} masks; give one map per subject")
    brains, changes, atlases = (list(x) if x is not None else [None] * n
                                for x in (brains, changes, atlases))
    labels = list(names) if names is not None else [f"subject{i + 1}" for i in range(n)]
    rows, notes = [], []
    if all(c is None for c in changes):
        notes.append("oracle: the mask itself (no change map given), not the change the data hold")
    for i in range(n):
        truth = GroundTruth(masks[i], brain=brains[i], atlas=atlases[i], tolerance=tolerance)
        for method, items in maps.items():
            rows.append({"subject": labels[i], "method": method,
                         **truth.score(items[i], channel_axis)})
        for row in reference_rows(truth, changes[i], sigmas, mask=masks[i],
                                  channel_axis=channel_axis if changes[i] is not None else None):
            rows.append({"subject": labels[i], **row})
    per_subject = pd.DataFrame(rows)
    table, sd = summarise(per_subject)
    return GroundTruthReport(per_subject, table, sd, notes)
