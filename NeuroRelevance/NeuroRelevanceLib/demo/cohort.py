"""Synthetic T1 cohort with known atrophy: subjects in memory or written as NIfTI + manifest.

Every subject ``index`` of a cohort with ``seed`` draws its own random streams from
``SeedSequence([seed, index])`` (deformation, noise, effect severity), so a subject is the same
whatever else is generated, with effects on or off, and at any spacing (up to the grid).
Public arrays are in Slicer's (k, j, i) order on a :class:`~NeuroRelevanceLib.geometry.Grid` (RAS, mm); the
generator samples in (i, j, k) internally, so a subject's voxels are the same as before the convention was unified.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..geometry import Grid
from ..nifti import write_nifti
from .anatomy import AD_REGIONS, AGE_REGIONS, load_anatomy
from .atrophy import ATROPHY_LABELS, AtrophyParams, apply_atrophy, check_subject_labels
from .deform import make_grid, random_deformation, sample, smooth_for_spacing, world_points, world_to_voxel

MANIFEST = "participants.csv"
DESCRIPTION = "cohort.json"


@dataclass
class SyntheticSubject:
    """One subject: T1-like image, applied-atrophy and regions label maps, labels, all (k, j, i) on ``grid``.

    ``atlas_labels`` is the atlas warped into this subject (in memory only, not written).
    """

    subject_id: str
    age: float
    diagnosis: str
    image: np.ndarray
    atrophy: np.ndarray
    regions: np.ndarray
    brain: np.ndarray
    grid: Grid
    atlas_labels: np.ndarray
    info: dict = field(default_factory=dict)

    def mask(self, *labels: int) -> np.ndarray:
        """Boolean mask of the applied-atrophy voxels with any of ``labels`` (all if none given)."""
        return np.isin(self.atrophy, labels) if labels else self.atrophy > 0


@dataclass
class CohortArrays:
    """A cohort in memory: images (n, k, j, i) float32, atrophy maps (n, k, j, i) uint8, table, ``grid``."""

    images: np.ndarray
    atrophy: np.ndarray
    regions: np.ndarray
    table: pd.DataFrame
    grid: Grid


#: atlas label + _BRAIN_CODE * brain + _VENTRICLE_CODE * ventricle + compact label << _COMPACT_SHIFT
#: + _FOCAL_CODE * focal age ball: one nearest-neighbour lookup
_BRAIN_CODE, _VENTRICLE_CODE, _COMPACT_SHIFT, _FOCAL_CODE = 1 << 12, 1 << 13, 14, 1 << 16


@lru_cache(maxsize=8)
def _prepared_map(atlas: str, spacing: float, name: str) -> np.ndarray:
    """Template map ``name`` ("t1", "gm", "wm" anti-aliased for ``spacing``; "classes") (cached), in the
    generator's internal (i, j, k) order."""
    anat = load_anatomy(atlas)
    if name == "classes":
        from .compact import compact_map, focal_age_map

        arr = (anat.labels.astype(np.int32) + _BRAIN_CODE * anat.brain
               + _VENTRICLE_CODE * anat.ventricles
               + (compact_map(atlas).astype(np.int32) << _COMPACT_SHIFT)
               + _FOCAL_CODE * focal_age_map(atlas)).astype(np.int32)
        arr = np.ascontiguousarray(arr.transpose(2, 1, 0))   # the anatomy's (k, j, i) -> the sampler's (i, j, k)
    else:
        arr = smooth_for_spacing(np.ascontiguousarray(getattr(anat, name).transpose(2, 1, 0)), spacing)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=4)
def _grid_points(spacing: float) -> tuple[Grid, np.ndarray]:
    grid = make_grid(spacing)
    pts = world_points(grid)
    pts.setflags(write=False)
    return grid, pts


def subject_space(index: int, *, spacing: float, seed: int, atlas: str = "desikan-killiany",
                  deformation: bool = True, maps: tuple[str, ...] = ("t1", "gm"),
                  ) -> tuple[Grid, dict[str, np.ndarray], list[np.random.Generator]]:
    """Template maps seen through subject ``index``'s deformation, on the grid for ``spacing``.

    Returns the grid, the sampled maps (internal: in (i, j, k) order, ``grid.shape_ijk``) (``maps`` plus
    "labels", "brain", "ventricles", "compact", "focal_age")
    and four
    independent random generators from ``SeedSequence([seed, index])``: deformation (already
    used), noise, effects, extra (lesions).
    """
    anat = load_anatomy(atlas)
    grid, pts = _grid_points(float(spacing))
    rngs = [np.random.default_rng(s)
            for s in np.random.SeedSequence([int(seed), int(index)]).spawn(4)]
    phi = random_deformation(rngs[0], enabled=deformation)
    vox = world_to_voxel(phi.apply_grid(grid, pts), anat.grid.ijk_to_ras)
    out = {name: sample(_prepared_map(atlas, float(spacing), name), vox, grid.shape_ijk)
           for name in maps}
    classes = sample(_prepared_map(atlas, float(spacing), "classes"), vox, grid.shape_ijk, order=0)
    out["labels"] = classes & (_BRAIN_CODE - 1)
    out["brain"] = (classes & _BRAIN_CODE) > 0
    out["ventricles"] = (classes & _VENTRICLE_CODE) > 0
    out["compact"] = ((classes >> _COMPACT_SHIFT) & 3).astype(np.uint8)
    out["focal_age"] = (classes & _FOCAL_CODE) > 0
    return grid, out, rngs


def subject_id(index: int) -> str:
    return f"sub-{index:04d}"


def synthesize_subject(index: int, age: float, diagnosis: str, *, spacing: float = 3.0,
                       seed: int = 0, atlas: str = "desikan-killiany", effects: bool = True,
                       deformation: bool = True, noise_sd: float = 0.03,
                       params: AtrophyParams | None = None,
                       skull_strip: bool = False) -> SyntheticSubject:
    """Generate subject ``index`` of cohort ``seed`` with the given age (years) and diagnosis.

    ``effects=False`` gives the same subject without atrophy (same deformation and noise);
    ``deformation=False`` keeps the template shape (for checks against the atlas);
    ``skull_strip=True`` sets every voxel outside the brain mask to 0 (the scalp is kept otherwise);
    ``params.pattern="compact"`` gives the compact-atrophy variant (:mod:`.compact`),
    ``params.age_pattern="focal"`` the focal age effect (:func:`.compact.focal_age_map`).
    """
    params = params or AtrophyParams()
    check_subject_labels(age, diagnosis, params)
    if noise_sd < 0:
        raise ValueError(f"noise_sd={noise_sd!r} is negative; pass 0 for no noise")
    anat = load_anatomy(atlas)
    grid, m, (_, r_noise, r_eff, _) = subject_space(index, spacing=spacing, seed=seed, atlas=atlas,
                                                    deformation=deformation)
    t1, gm, labels = m["t1"], m["gm"], m["labels"]
    brain, ventricles = m["brain"], m["ventricles"]
    severity = float(r_eff.uniform(*params.ad_loss_range))
    ad_ids = anat.region_ids(AD_REGIONS[atlas])
    age_ids = anat.region_ids(AGE_REGIONS[atlas])
    t1, applied, regions = apply_atrophy(
        t1, gm, labels, ventricles, brain, age=age, diagnosis=diagnosis, severity=severity,
        ad_ids=ad_ids, age_ids=age_ids, intensity=anat.intensity, spacing=float(spacing),
        params=params, enabled=effects, compact=m["compact"], focal_age=m["focal_age"])
    gain = np.float32(1.0 + r_noise.normal(0.0, 0.03))
    noise = r_noise.normal(0.0, 1.0, size=grid.shape_ijk).astype(np.float32) * np.float32(noise_sd)
    image = gain * t1 + noise * brain
    if skull_strip:
        image = image * brain
    info = {"ad_severity": severity if diagnosis == "AD" and effects else 0.0,
            "age_gm_loss": params.age_loss_at_90 * params.age_fraction(age) if effects else 0.0,
            "ventricle_growth_mm": (params.ventricle_growth_at_90_mm * params.age_fraction(age)
                                    if effects else 0.0),
            "gain": float(gain)}
    return SyntheticSubject(subject_id=subject_id(index), age=float(age), diagnosis=diagnosis,
                            image=_to_kji(image.astype(np.float32)), atrophy=_to_kji(applied),
                            regions=_to_kji(regions), brain=_to_kji(brain), grid=grid,
                            atlas_labels=_to_kji(labels.astype(np.int16)), info=info)


def _to_kji(generated: np.ndarray) -> np.ndarray:
    """The generator's (..., i, j, k) array as a contiguous (..., k, j, i) array (the public order)."""
    return np.ascontiguousarray(np.swapaxes(generated, -1, -3))


def cohort_table(n_subjects: int, *, seed: int = 0, ad_fraction: float = 0.5,
                 age_range: tuple[float, float] = (20.0, 90.0)) -> pd.DataFrame:
    """Ages (uniform, independent of diagnosis) and diagnoses (round(n * ad_fraction) AD-like)."""
    if int(n_subjects) != n_subjects or n_subjects < 1:
        raise ValueError(f"n_subjects={n_subjects!r} must be a positive integer")
    if not 0.0 <= ad_fraction <= 1.0:
        raise ValueError(f"ad_fraction={ad_fraction!r} must lie in [0, 1]")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2**31 - 1]))
    n = int(n_subjects)
    ages = np.round(rng.uniform(age_range[0], age_range[1], size=n), 1)
    n_ad = int(round(n * ad_fraction))
    diagnosis = np.array(["AD"] * n_ad + ["control"] * (n - n_ad))[rng.permutation(n)]
    return pd.DataFrame({"subject_id": [subject_id(i) for i in range(n)], "index": np.arange(n),
                         "age": ages, "diagnosis": diagnosis,
                         "label": (diagnosis == "AD").astype(int)})


def generate_cohort_arrays(n_subjects: int, spacing: float = 3.0, seed: int = 0,
                           ad_fraction: float = 0.5, *, atlas: str = "desikan-killiany",
                           effects: bool = True, params: AtrophyParams | None = None,
                           skull_strip: bool = False) -> CohortArrays:
    """The whole cohort in memory (no files): for training and tests."""
    params = params or AtrophyParams()
    table = cohort_table(n_subjects, seed=seed, ad_fraction=ad_fraction, age_range=params.age_range)
    subjects = [synthesize_subject(int(r.index), float(r.age), str(r.diagnosis), spacing=spacing,
                                   seed=seed, atlas=atlas, effects=effects, params=params,
                                   skull_strip=skull_strip)
                for r in table.itertuples()]
    table = _with_info(table, subjects)
    return CohortArrays(images=np.stack([s.image for s in subjects]),
                        atrophy=np.stack([s.atrophy for s in subjects]),
                        regions=np.stack([s.regions for s in subjects]),
                        table=table, grid=subjects[0].grid)


def _with_info(table: pd.DataFrame, subjects: list[SyntheticSubject]) -> pd.DataFrame:
    extra = pd.DataFrame([s.info for s in subjects])
    return pd.concat([table.reset_index(drop=True), extra], axis=1)


def check_output_folder(out: Path, overwrite: bool) -> None:
    """Refuse to write over an earlier cohort (manifest or ``sub-*`` files) unless ``overwrite``."""
    if overwrite or not out.exists():
        return
    if not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; pass a folder path for the cohort")
    existing = [p.name for p in out.iterdir() if p.name == MANIFEST or p.name.startswith("sub-")]
    if existing:
        raise FileExistsError(f"{out} already holds {existing[0]} (and {len(existing) - 1} more "
                              f"cohort files); pass overwrite=True or choose an empty folder")


def generate_cohort(out_dir: str | Path, n_subjects: int, spacing: float = 3.0, seed: int = 0,
                    ad_fraction: float = 0.5, *, atlas: str = "desikan-killiany",
                    params: AtrophyParams | None = None, overwrite: bool = False,
                    skull_strip: bool = False, indices: list[int] | None = None,
                    twins: str | None = None) -> pd.DataFrame:
    """Write every subject's T1, atrophy and regions maps (NIfTI) and the manifest; return it.

    Files: ``sub-XXXX_T1w.nii.gz``, ``sub-XXXX_atrophy.nii.gz``, ``sub-XXXX_regions.nii.gz``,
    ``sub-XXXX_brain.nii.gz`` (the brain mask: the domain of ground-truth scores),
    ``participants.csv`` (paths relative to ``out_dir``) and ``cohort.json`` (parameters, label
    meanings, region names). An existing manifest is never overwritten unless ``overwrite=True``.
    ``indices`` writes only those subjects of the ``n_subjects`` cohort (e.g. a model's held-out
    test subjects), with their ages and diagnoses from the whole cohort's table. ``twins="ad"``
    also writes each subject's twin without the AD-like effect (``sub-XXXX_twin_T1w.nii.gz``: the
    same subject as a control of the same age), ``twins="all"`` its twin without any effect; the
    difference subject - twin is the true change map (the ground-truth oracle).
    """
    if twins not in (None, "ad", "all"):
        raise ValueError(f"twins={twins!r} must be None, 'ad' or 'all'")
    out = Path(out_dir)
    check_output_folder(out, overwrite)
    params = params or AtrophyParams()
    table = cohort_table(n_subjects, seed=seed, ad_fraction=ad_fraction, age_range=params.age_range)
    if indices is not None:
        bad = [i for i in indices if not 0 <= int(i) < len(table)]
        if bad:
            raise ValueError(f"indices {bad} lie outside the cohort of {n_subjects} subjects")
        table = table.iloc[[int(i) for i in indices]].reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in table.itertuples():
        s = synthesize_subject(int(r.index), float(r.age), str(r.diagnosis), spacing=spacing,
                               seed=seed, atlas=atlas, params=params, skull_strip=skull_strip)
        files = {"image": f"{s.subject_id}_T1w.nii.gz", "atrophy": f"{s.subject_id}_atrophy.nii.gz",
                 "regions": f"{s.subject_id}_regions.nii.gz", "brain": f"{s.subject_id}_brain.nii.gz"}
        write_nifti(out / files["image"], s.image, s.grid)
        write_nifti(out / files["atrophy"], s.atrophy, s.grid)
        write_nifti(out / files["regions"], s.regions, s.grid)
        write_nifti(out / files["brain"], s.brain.astype(np.uint8), s.grid)
        if twins is not None:
            twin = synthesize_subject(int(r.index), float(r.age),
                                      "control" if twins == "ad" else str(r.diagnosis),
                                      spacing=spacing, seed=seed, atlas=atlas, params=params,
                                      skull_strip=skull_strip, effects=twins == "ad")
            files["twin"] = f"{s.subject_id}_twin_T1w.nii.gz"
            write_nifti(out / files["twin"], twin.image, twin.grid)
        rows.append({**s.info, **files})
    manifest = pd.concat([table, pd.DataFrame(rows)], axis=1)
    manifest.to_csv(out / MANIFEST, index=False)
    anat = load_anatomy(atlas)
    description = {
        "generator": "NeuroRelevanceLib.demo.cohort.generate_cohort",
        "n_subjects": int(n_subjects), "spacing_mm": float(spacing), "seed": int(seed),
        "ad_fraction": float(ad_fraction), "atlas": atlas, "params": params.as_dict(),
        "skull_strip": bool(skull_strip),
        "indices": None if indices is None else [int(i) for i in indices], "twins": twins,
        "atrophy_labels": {str(k): v for k, v in ATROPHY_LABELS.items()},
        "ad_regions": [anat.names[i] for i in anat.region_ids(AD_REGIONS[atlas])],
        "age_regions": [anat.names[i] for i in anat.region_ids(AGE_REGIONS[atlas])],
        "array_order": "nibabel [i, j, k], RAS affine in each NIfTI",
    }
    (out / DESCRIPTION).write_text(json.dumps(description, indent=2))
    return manifest


def load_cohort(out_dir: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`generate_cohort`, with absolute file paths."""
    out = Path(out_dir)
    if not (out / MANIFEST).is_file():
        raise FileNotFoundError(f"{out / MANIFEST} not found; generate the cohort first with "
                                f"generate_cohort({str(out)!r}, n_subjects)")
    table = pd.read_csv(out / MANIFEST)
    for col in [c for c in ("image", "atrophy", "regions", "brain", "twin")
                if c in table.columns]:
        table[col] = [str((out / p).resolve()) for p in table[col]]
    return table
