"""The README's first command: explain a held-out synthetic AD-like brain with the demo network.

Steps (each printed as it runs): load the AD-vs-control model from its card (no unpickling),
generate a subject the network never saw (a cohort index beyond the training set) with its
ground-truth atrophy mask, put it in a real MRML scene, run LRP with the card's recommended
preset, and write to the output folder:

- ``heatmap.nii.gz`` + ``heatmap.json``   the raw relevance on the scan's grid and its settings record
- ``scan.nii.gz``, ``atrophy_mask.nii.gz``   the scan and where atrophy was applied
- ``regions.csv``, ``regions.png``           relevance per atlas region on the scan grid (top regions)
- ``overlay.png``           axial, sagittal and coronal slices through the atrophy, labelled (letters,
                            positions, colour bar, caption with the model's intended use)
- ``scene.mrml``            the scene (scan, overlay, mask, table), opens in 3D Slicer

The region table is the one ``neurorelevance regions heatmap.nii.gz`` computes from the same file.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

DEMO_MODEL = "ad_cnn"
HELD_OUT_INDEX = 9001  # far beyond any training index: a subject the network never saw
DEMO_ATLAS = "DesikanKilliany"
#: display and region settings of the demo (the web viewer opens with the same)
DEMO_SETTINGS = dict(min_overlap=0.2, opacity=0.6, threshold=0.05)


@dataclass
class DemoReport:
    """What the demo computed and wrote."""

    prediction: str
    conservation_error: float
    mass_accuracy: float
    rank_accuracy: float
    top_regions: list[tuple[str, float]]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(output_dir: str | Path = "demo-output", *, spacing: float = 2.0, age: float = 78.0,
             diagnosis: str = "AD", atlas: str = DEMO_ATLAS, seed: int | None = None,
             card: str | Path | None = None, log: Callable[[str], None] = print) -> DemoReport:
    """Run the whole demo; ``spacing`` is the scan's resolution in mm (the model resamples it).

    ``card`` replaces the bundled AD model by another model card (the same input conventions).
    """
    import slicer

    from . import mrml
    from .demo import ground_truth_scores
    from .logic import RelevanceLogic
    from .models import load_model
    from .heatmap_files import write_heatmap
    from .provenance import use_lines
    from .regions import plot_top_regions, write_csv

    started = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = 6
    if card is None:
        from .pretrained import model_card_path

        card = model_card_path(DEMO_MODEL)
    log(f"[1/{steps}] Loading the demo network from its model card ({Path(card).name})")
    loaded = load_model(card, device="auto")
    log(f"      {loaded.summary()}")
    for line in use_lines(loaded.card.use_warning, loaded.card.intended_use, loaded.card.limitations):
        log(f"      {line}")
    card_seed = int(loaded.card.metrics.get("cohort_seed", 0)) if seed is None else seed
    log(f"[2/{steps}] Generating a held-out {diagnosis} subject, age {age:g}, at {spacing:g} mm")
    scene = slicer.vtkMRMLScene()
    views = mrml.SliceViews(scene, size=(320, 320))
    subject = add_demo_subject(scene, age=age, diagnosis=diagnosis, spacing=spacing, seed=card_seed)
    scan, mask, mask_kji, grid = subject.scan, subject.mask, subject.mask_kji, subject.grid
    preset = loaded.card.recommended_preset
    log(f"[3/{steps}] Explaining with LRP ({preset}) and atlas '{atlas}'")
    logic = RelevanceLogic(scene, views)
    # the synthetic scans keep the scalp, where input-layer rules (zB) also put relevance:
    # accept the partial overlap and report it
    run = logic.run([scan], loaded, preset=preset, atlas=atlas, **DEMO_SETTINGS)
    e = run.explanation
    scores = ground_truth_scores(run.raw_source[0], mask_kji.astype(bool))
    log(f"      prediction: {run.prediction}; target {run.job.label} = "
        f"{float(e.target_value[0]):.4g}; conservation error {e.max_conservation_error:.2e}")
    log(f"      ground truth: relevance mass accuracy {scores['mass_accuracy']:.2f}, "
        f"rank accuracy {scores['rank_accuracy']:.2f} (share of relevance inside the atrophy mask)")
    log(f"[4/{steps}] Region statistics on the scan grid ({run.table.attrs['grid']}; {len(run.table)} "
        f"regions; {run.table.attrs.get('overlap', float('nan')):.0%} of Σ|R| lies inside the atlas' brain)")
    top = run.table.head(5)
    for row in top.itertuples():
        log(f"      {int(row.rank):2d}. {row.name:35s} density {row.density:+.3g}  "
            f"fraction of positive relevance {row.fraction_pos:.2f}")
    log(f"[5/{steps}] Writing files to {out.resolve()}")
    heatmap, sidecar = write_heatmap(out / "heatmap.nii.gz", run.raw_source[0], grid, run.record)
    files = {"heatmap": heatmap, "heatmap_json": sidecar,
             "scan": mrml.write_volume(scan, out / "scan.nii.gz"),
             "atrophy_mask": mrml.write_volume(mask, out / "atrophy_mask.nii.gz"),
             "regions_csv": write_csv(run.table, out / "regions.csv"),
             "regions_png": _plot(plot_top_regions, run.table, out / "regions.png"),
             "overlay_png": views.render_montage(out / "overlay.png",
                                                 offsets=_centre_offsets(views, mask_kji, grid))}
    log(f"[6/{steps}] Saving the scene (open it in 3D Slicer: File > Add Data)")
    files["scene"] = mrml.save_scene(scene, out / "scene.mrml")
    for kind, path in files.items():
        log(f"      {kind:13s} {path}")
    report = DemoReport(run.prediction, e.max_conservation_error, scores["mass_accuracy"],
                        scores["rank_accuracy"],
                        [(r.name, float(r.density)) for r in top.itertuples()], files,
                        time.perf_counter() - started)
    log(f"Done in {report.seconds:.1f} s.")
    return report


@dataclass
class DemoSubject:
    """A held-out synthetic subject in a scene: the T1 scan and its ground-truth atrophy mask."""

    scan: object            # vtkMRMLScalarVolumeNode
    mask: object            # vtkMRMLLabelMapVolumeNode
    mask_kji: np.ndarray
    grid: object            # geometry.Grid of both


def add_demo_subject(scene, *, age: float = 78.0, diagnosis: str = "AD", spacing: float = 2.0,
                     seed: int | None = None, index: int = HELD_OUT_INDEX) -> DemoSubject:
    """Add a synthetic subject the demo networks never saw (scan + atrophy mask) to ``scene``.

    ``seed`` defaults to the cohort seed recorded in the demo model's card, so the subject comes
    from the same generator the network was trained on.
    """
    from . import mrml
    from .demo import synthesize_subject
    from .geometry import Grid, nibabel_to_kji

    if seed is None:
        from .models import read_card
        from .pretrained import model_card_path

        seed = int(read_card(model_card_path(DEMO_MODEL)).metrics.get("cohort_seed", 0))
    subject = synthesize_subject(index, age, diagnosis, spacing=spacing, seed=seed)
    grid = Grid(nibabel_to_kji(subject.image).shape, subject.affine)
    scan = mrml.array_to_volume(scene, np.ascontiguousarray(nibabel_to_kji(subject.image)), grid,
                                f"{subject.subject_id} T1")
    mask_kji = np.ascontiguousarray(nibabel_to_kji(subject.atrophy > 0)).astype(np.uint8)
    mask = mrml.array_to_volume(scene, mask_kji, grid, "atrophy (ground truth)",
                                node_class="vtkMRMLLabelMapVolumeNode")
    mask.CreateDefaultDisplayNodes()
    return DemoSubject(scan, mask, mask_kji, grid)


def _plot(plot, table, path: Path) -> Path:
    plot(table, path, k=12, title="Relevance density per region (top 12)")
    return path


def _centre_offsets(views, mask_kji: np.ndarray, grid) -> dict:
    """Slice offsets through the centre of the ground-truth mask (along each view's own normal)."""
    if not mask_kji.any():
        return {}
    k, j, i = (float(np.mean(a)) for a in np.nonzero(mask_kji))
    return views.offsets_through((grid.ijk_to_ras @ np.array([i, j, k, 1.0]))[:3])

