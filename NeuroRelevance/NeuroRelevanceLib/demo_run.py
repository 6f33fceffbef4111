"""The README's first command: explain a generated AD-like brain that no network saw with the demo network.

Steps (each printed as it runs): load the AD-vs-control model from its card (no unpickling),
generate one subject with the card's generator at index 9001 (:data:`DEMO_SUBJECT_INDEX`: beyond every split
of the training cohort, and not part of any cohort, the card's fresh held-out cohort included) with its
ground-truth atrophy mask, put it in a real MRML scene, run LRP with the card's recommended
preset, and write to the output folder:

- ``heatmap.nii.gz`` + ``heatmap.json``   the raw relevance on the scan's grid and its settings record
- ``scan.nii.gz``, ``atrophy_mask.nii.gz``   the scan and where atrophy was applied (label 1 AD-like,
                            2 age-related grey matter, 3 ventricle growth)
- ``regions.csv``, ``regions.png``           relevance per atlas region on the scan grid (top regions)
- ``overlay.png``           axial, sagittal and coronal slices through the AD-like atrophy, labelled (letters,
                            positions, colour bar, caption with the model's intended use)
- ``scene.mrml``            the scene (scan, overlay, mask, table), opens in 3D Slicer

The region table is the one ``neurorelevance regions heatmap.nii.gz`` computes from the same file.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

if TYPE_CHECKING:
    from .geometry import Grid

DEMO_MODEL = "ad_cnn"
DEMO_SUBJECT_INDEX = 9001  # far beyond any split's index, not part of any cohort: a subject no network saw
DEMO_ATLAS = "DesikanKilliany"


class DemoSettings(TypedDict):
    """Display and region settings of the demo (keywords of ``RelevanceLogic.run``)."""

    min_overlap: float
    opacity: float
    threshold: float


#: display and region settings of the demo (the web viewer opens with the same)
DEMO_SETTINGS = DemoSettings(min_overlap=0.2, opacity=0.6, threshold=0.05)


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
    #: ground-truth scores in the brain against the AD-like label, with their chance and ceiling
    scores: dict[str, float] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    ceiling: dict[str, float] = field(default_factory=dict)


def run_demo(output_dir: str | Path = "demo-output", *, spacing: float = 2.0, age: float = 78.0,
             diagnosis: str = "AD", atlas: str = DEMO_ATLAS, seed: int | None = None,
             card: str | Path | None = None, log: Callable[[str], None] = print) -> DemoReport:
    """Run the whole demo; ``spacing`` is the scan's resolution in mm (the model resamples it).

    ``card`` replaces the bundled AD model by another model card (the same input conventions).
    """
    import slicer

    from . import mrml
    from .errors import InputError
    from .heatmap_files import write_heatmap
    from .logic import RelevanceLogic
    from .models import load_model
    from .panel import recommendation_text
    from .provenance import use_lines
    from .regions import plot_top_regions, write_csv

    started = time.perf_counter()
    out = Path(output_dir)
    steps = 6
    if card is None:
        from .pretrained import model_card_path

        card = model_card_path(DEMO_MODEL)
    log(f"[1/{steps}] Loading the demo network from its model card ({Path(card).name})")
    loaded = load_model(card, device="auto")
    model_card = loaded.card
    if model_card is None:
        raise InputError(f"{card} is a model file, not a model card: the demo takes a card (.json) that names "
                         "the network's intended use and recommended preset.")
    truth_labels(card)   # a card that lists no ground-truth labels is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    log(f"      {loaded.summary()}")
    for line in use_lines(model_card.use_warning, model_card.intended_use, model_card.limitations):
        log(f"      {line}")
    log(f"[2/{steps}] Generating a {diagnosis} subject no network saw (index {DEMO_SUBJECT_INDEX}, not part of "
        f"any cohort), age {age:g}, at {spacing:g} mm")
    scene = slicer.vtkMRMLScene()
    views = mrml.SliceViews(scene, size=(320, 320))
    subject = add_demo_subject(scene, age=age, diagnosis=diagnosis, spacing=spacing, seed=seed,
                               card=card)
    scan, mask, mask_kji, grid = subject.scan, subject.mask, subject.mask_kji, subject.grid
    preset = model_card.recommended_preset
    log(f"[3/{steps}] Explaining with LRP ({preset}) and atlas '{atlas}'")
    log(f"      {recommendation_text(loaded.card)}")
    logic = RelevanceLogic(scene, views)
    # scores are taken inside the brain; relevance outside it (scalp, background) is reported
    run = logic.run([scan], loaded, preset=preset, atlas=atlas, **DEMO_SETTINGS)
    e = run.explanation
    log(f"      prediction: {run.prediction}; target {run.job.label} = "
        f"{float(e.target_value[0]):.4g}; conservation error {e.max_conservation_error:.2e}")
    scores, chance, ceiling = subject.score(run.raw_source[0])
    for line in ground_truth_lines(scores, chance, ceiling, subject.grid, subject.labels):
        log(f"      {line}")
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
             "overlay_png": views.render_montage(out / "overlay.png", offsets=_centre_offsets(
                 views, subject.truth if subject.truth.any() else mask_kji, grid))}
    log(f"[6/{steps}] Saving the scene (open it in 3D Slicer: File > Add Data)")
    files["scene"] = mrml.save_scene(scene, out / "scene.mrml")
    for kind, path in files.items():
        log(f"      {kind:13s} {path}")
    report = DemoReport(run.prediction, e.max_conservation_error,
                        scores.get("mass_accuracy", float("nan")), scores.get("rank_accuracy", float("nan")),
                        [(r.name, float(r.density)) for r in top.itertuples()], files,
                        time.perf_counter() - started, scores, chance, ceiling)
    log(f"Done in {report.seconds:.1f} s.")
    return report


@dataclass
class DemoSubject:
    """The demo's generated subject (no network saw it) in a scene: the T1 scan and its ground-truth atrophy labels.

    ``mask_kji`` holds the atrophy labels (1 AD-like, 2 age-related grey matter, 3 ventricles);
    a model is scored against the labels its card names (``labels``: (1,) for the AD model, (2, 3)
    for the brain-age model, None for every non-zero label), inside ``brain_kji``; ``change_kji`` is
    the true change of those labels (the scan minus its twin without them), the ground-truth oracle.
    """

    scan: object            # vtkMRMLScalarVolumeNode
    mask: object            # vtkMRMLLabelMapVolumeNode
    mask_kji: np.ndarray
    grid: Grid              # of both
    brain_kji: np.ndarray | None = None
    change_kji: np.ndarray | None = None
    labels: tuple[int, ...] | None = (1,)

    @property
    def truth(self) -> np.ndarray:
        """The voxels of the card's ground-truth labels."""
        return self.mask_kji > 0 if self.labels is None else np.isin(self.mask_kji, self.labels)

    def score(self, heatmap_kji: np.ndarray) -> tuple[dict, dict, dict]:
        """(scores, chance, ceiling = the true change blurred by one voxel) against the card's labels;
        three empty dicts when the subject has none of them (e.g. a control for the AD model)."""
        from .metrics.groundtruth import GroundTruth, oracle_maps

        mask = self.truth
        if not mask.any():
            return {}, {}, {}
        truth = GroundTruth(mask, brain=self.brain_kji)
        change = self.change_kji if self.change_kji is not None else mask.astype(float)
        return truth.score(heatmap_kji), truth.chance(), truth.score(oracle_maps(change, (1.0,))[1.0])


def truth_words(labels: tuple[int, ...] | None) -> str:
    """The ground-truth labels in words: "AD-like atrophy, label 1", "age-related atrophy, labels 2, 3"."""
    if labels is None:
        return "every non-zero label"
    names = {1: "AD-like", 2: "age-related", 3: "age-related"}
    kinds = " and ".join(dict.fromkeys(names.get(label, f"label {label}") for label in labels))
    return f"{kinds} atrophy, label{'s' if len(labels) > 1 else ''} {', '.join(str(n) for n in labels)}"


def truth_labels(card: str | Path) -> tuple[int, ...]:
    """The atrophy labels of a card's ground truth (``ground_truth.mask_labels``: (1,) for the AD model,
    (2, 3) for the brain-age model); an InputError naming the fix for a card that does not list them."""
    from .errors import InputError
    from .pretrained.heldout import ground_truth_labels

    try:
        return ground_truth_labels(card)
    except ValueError as error:
        raise InputError(f"The demo scores the heatmap against the card's ground truth: {error}") from None


def ground_truth_lines(scores: dict, chance: dict, ceiling: dict, grid,
                       labels: tuple[int, ...] | None = (1,)) -> list[str]:
    """What the demo prints about the ground truth: each score beside its chance and ceiling."""
    words = truth_words(labels)
    if not scores:
        return [f"ground truth: this subject has none of the model card's ground truth ({words}), so there is "
                "nothing to score against"]
    voxel = float(grid.spacing[0])
    return [f"ground truth ({words}: {chance['mass_accuracy']:.1%} of the brain; scored "
            f"inside the brain, ceiling = the true change blurred by 1 voxel = {voxel:g} mm):",
            f"  relevance mass accuracy {scores['mass_accuracy']:.2f} (chance {chance['mass_accuracy']:.2f}, "
            f"ceiling {ceiling['mass_accuracy']:.2f}); within 1 voxel {scores['mass_accuracy_1vox']:.2f} "
            f"(chance {chance['mass_accuracy_1vox']:.2f}, ceiling {ceiling['mass_accuracy_1vox']:.2f})",
            f"  rank accuracy {scores['rank_accuracy']:.2f} (chance {chance['rank_accuracy']:.2f}, ceiling "
            f"{ceiling['rank_accuracy']:.2f}); AUC in the brain {scores['auc_brain']:.2f} (chance 0.50, "
            f"ceiling {ceiling['auc_brain']:.2f}); {scores['outside_share']:.0%} of the positive relevance "
            f"lies outside the brain"]


def add_demo_subject(scene, *, age: float = 78.0, diagnosis: str = "AD", spacing: float = 2.0,
                     seed: int | None = None, index: int = DEMO_SUBJECT_INDEX,
                     card: str | Path | None = None) -> DemoSubject:
    """Add a synthetic subject the demo networks never saw (scan + atrophy labels) to ``scene``.

    The generator's seed, atrophy pattern and skull stripping come from the demo model's card
    (``card``, default the bundled AD model), so the subject is made like the network's training
    data; ``seed`` overrides the card's seed.
    """
    from . import mrml
    from .demo import synthesize_subject
    from .pretrained.heldout import generator_options

    if card is None:
        from .pretrained import model_card_path

        card = model_card_path(DEMO_MODEL)
    try:
        options = generator_options(card)
    except (ValueError, KeyError):   # not a demo card: the generator's defaults
        options = {"seed": 0}
    options["spacing"] = spacing
    if seed is not None:
        options["seed"] = seed
    labels = truth_labels(card)
    subject = synthesize_subject(index, age, diagnosis, **options)
    # the twin lacks exactly the scored change: the AD-free control, or the subject without any atrophy
    twin = synthesize_subject(index, age, "control", **options) if labels == (1,) else \
        synthesize_subject(index, age, diagnosis, effects=False, **options)
    grid = subject.grid
    scan = mrml.array_to_volume(scene, subject.image, grid, f"{subject.subject_id} T1")
    mask_kji = subject.atrophy.astype(np.uint8)
    mask = mrml.array_to_volume(scene, mask_kji, grid,
                                "atrophy (ground truth: 1 AD-like, 2 age grey matter, 3 ventricles)",
                                node_class="vtkMRMLLabelMapVolumeNode")
    mask.CreateDefaultDisplayNodes()
    return DemoSubject(scan, mask, mask_kji, grid, subject.brain, subject.image - twin.image, labels)


def _plot(plot, table, path: Path) -> Path:
    plot(table, path, k=12, title="Relevance density per region (top 12)")
    return path


def _centre_offsets(views, mask_kji: np.ndarray, grid) -> dict:
    """Slice offsets through the centre of the ground-truth mask (along each view's own normal)."""
    if not mask_kji.any():
        return {}
    k, j, i = (float(np.mean(a)) for a in np.nonzero(mask_kji))
    return views.offsets_through((grid.ijk_to_ras @ np.array([i, j, k, 1.0]))[:3])

