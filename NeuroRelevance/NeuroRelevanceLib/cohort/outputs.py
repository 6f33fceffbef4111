"""Write a :class:`CohortResult` to a folder: NIfTI RoIs, PNG plots, CSV tables, JSON summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .plots import plot_loadings, plot_rank_errors, plot_scree
from .roi import region_summaries, save_rois
from .tucker import as_numpy


def write_outputs(result, out_dir: str | Path, atlas: str | None = None,
                  target_name: str = "target") -> dict[str, object]:
    """Save everything under ``out_dir`` (created); returns {name: path(s)}. Never touches inputs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acts, lin = result.activations, result.linear
    files: dict[str, Any] = {}
    files.update(save_rois(out / "rois", lin.fit.factors[2], acts.layer_shape, result.input_grid))
    arrays: dict[str, Any] = {**as_numpy(lin.fit), "layer_affine": result.layer_grid.ijk_to_ras}
    np.savez(out / "decomposition.npz", **arrays)
    files["decomposition"] = out / "decomposition.npz"

    caption = _caption(result.summary())
    files["scree_png"] = plot_scree(result.scree, out / "scree.png", caption)
    pd.DataFrame({k: pd.Series(v) for k, v in result.scree.items()}).to_csv(out / "scree.csv", index_label="index")
    if result.grid is not None:
        g = result.grid
        files["rank_errors_png"] = plot_rank_errors(g.r1_values, g.r2_values, g.e_train, g.e_val,
                                                    g.suggested, out / "rank_errors.png", caption)
        pd.DataFrame(g.to_rows()).to_csv(out / "rank_grid.csv", index=False)
        files["rank_grid"] = out / "rank_grid.csv"

    rows = []
    for split, ix in result.splits.items():
        if split not in lin.loadings:
            continue
        for k, subj in enumerate(ix):
            row = {"subject": int(subj), "split": split, target_name: float(result.targets[subj]),
                   "network_prediction": float(result.activations.outputs[subj, 0]),
                   "linear_prediction": float(lin.predictions[split][k])}
            row.update({f"loading_{i + 1}": float(x) for i, x in enumerate(lin.loadings[split][k])})
            rows.append(row)
    loadings = pd.DataFrame(rows)
    loadings.to_csv(out / "loadings.csv", index=False)
    files["loadings"] = out / "loadings.csv"
    load_cols = [c for c in loadings.columns if c.startswith("loading_")]
    files["loadings_png"] = plot_loadings(loadings[load_cols].to_numpy(), loadings[target_name].to_numpy(),
                                          out / "loadings_vs_target.png", target_name, caption)
    pd.DataFrame(lin.table).to_csv(out / "linear_model_selection.csv", index=False)

    summary = result.summary()
    if atlas is not None:
        table, reason = region_summaries(files["rois"], atlas)
        if table is not None:
            table.to_csv(out / "roi_regions.csv", index=False)
            files["roi_regions"] = out / "roi_regions.csv"
        else:
            summary["roi_regions"] = reason
    summary["files"] = {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in files.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    files["summary"] = out / "summary.json"
    return files


def _caption(summary: dict) -> list[str]:
    """Caption of the cohort plots: which layer, how many subjects, which rank, which software."""
    from .. import __version__

    subjects = ", ".join(f"{k} {v}" for k, v in summary["n_subjects"].items())
    return [f"Cohort decomposition of layer {summary['layer']} ({subjects} subjects; rank "
            f"{'×'.join(map(str, summary['rank']))}) · NeuroRelevance {__version__}"]
