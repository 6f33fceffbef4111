"""Multi-channel lesion variant: perfusion/diffusion-like maps with synthetic stroke-like lesions.

Channels imitate the ISLES-2017 modalities of seed 001 (``CHANNELS``; default four of them). Each
channel is a tissue mixture of grey matter, white matter and fluid values (typical units: ADC in
1e-3 mm^2/s, rCBF in ml/100 g/min, rCBV in ml/100 g, MTT/Tmax/TTP in s) plus noise inside the
brain. Each subject gets 1-3 lesions: smooth irregular blobs (ellipsoids of random size and
orientation, perturbed by a smooth random field) inside brain tissue, with a core (label 1) and a
surrounding hypoperfused penumbra (label 2). Channels react differently: ADC drops in the core
only; rCBF drops in core and penumbra; rCBV drops in the core and rises slightly in the penumbra;
MTT, Tmax and TTP rise in both. Outside ``core | penumbra`` the lesion changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..geometry import Grid
from ..nifti import write_nifti
from .cohort import MANIFEST, _to_kji, check_output_folder, subject_id, subject_space

CHANNELS = ("ADC", "MTT", "rCBF", "rCBV", "Tmax", "TTP")
DEFAULT_CHANNELS = ("ADC", "rCBF", "rCBV", "Tmax")
LESION_LABELS: dict[int, str] = {1: "core", 2: "penumbra"}
LESION_DESCRIPTION = "lesions.json"

#: (grey matter, white matter, fluid) baseline of each channel
_TISSUE = {"ADC": (0.80, 0.72, 3.0), "MTT": (4.0, 4.8, 0.0), "rCBF": (60.0, 25.0, 0.0),
           "rCBV": (4.0, 2.2, 0.0), "Tmax": (1.0, 1.5, 0.0), "TTP": (6.0, 7.0, 0.0)}
#: (core multiplier, core addend, penumbra multiplier, penumbra addend)
_LESION = {"ADC": (0.55, 0.0, 1.0, 0.0), "MTT": (2.0, 0.0, 1.6, 0.0),
           "rCBF": (0.25, 0.0, 0.6, 0.0), "rCBV": (0.4, 0.0, 1.15, 0.0),
           "Tmax": (1.0, 8.0, 1.0, 5.0), "TTP": (1.0, 7.0, 1.0, 4.0)}


@dataclass
class LesionSubject:
    """One subject: channels (C, k, j, i) float32, lesion label map (1 core, 2 penumbra), brain mask, on ``grid``."""

    subject_id: str
    channels: np.ndarray
    channel_names: tuple[str, ...]
    lesion: np.ndarray
    brain: np.ndarray
    grid: Grid
    info: dict = field(default_factory=dict)


@dataclass
class LesionArrays:
    """A lesion cohort in memory: images (n, C, k, j, i), lesion maps (n, k, j, i), table, ``grid``."""

    images: np.ndarray
    lesions: np.ndarray
    table: pd.DataFrame
    grid: Grid
    channel_names: tuple[str, ...]


def _check_channels(channels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    channels = tuple(channels)
    unknown = [c for c in channels if c not in CHANNELS]
    if not channels or unknown or len(set(channels)) != len(channels):
        raise ValueError(f"channels={channels!r} must be distinct names from {CHANNELS}")
    return channels


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], spacing: float,
                  scale_mm: float = 8.0) -> np.ndarray:
    """Smooth zero-mean, unit-sd random field (Gaussian-filtered white noise)."""
    f = ndi.gaussian_filter(rng.normal(size=shape), sigma=scale_mm / spacing, mode="reflect")
    return (f / (f.std() + 1e-12)).astype(np.float32)


def _lesion_fields(rng: np.random.Generator, tissue: np.ndarray, grid_affine: np.ndarray,
                   n_lesions: int, spacing: float) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Core and penumbra weights in [0, 1] (zero outside their masks) and lesion parameters."""
    shape = tissue.shape
    depth = ndi.distance_transform_edt(tissue, sampling=spacing)
    candidates = np.argwhere(depth >= 12.0)
    if len(candidates) == 0:
        raise RuntimeError("no brain tissue deep enough for a lesion; use a finer spacing")
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    world = (grid_affine[:3, :3] @ ijk + grid_affine[:3, 3:]).astype(np.float32)
    level: np.ndarray = np.full(ijk.shape[1], np.inf, dtype=np.float32)
    outer: np.ndarray = np.full(ijk.shape[1], np.inf, dtype=np.float32)
    params = []
    for _ in range(n_lesions):
        centre_ijk = candidates[rng.integers(len(candidates))]
        centre = grid_affine[:3, :3] @ centre_ijk + grid_affine[:3, 3]
        radii = rng.uniform(6.0, 16.0, size=3)
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        pen_scale = rng.uniform(1.4, 1.8)
        local = (q.T @ (world - centre[:, None].astype(np.float32))) / radii[:, None]
        f = (local**2).sum(axis=0)
        level = np.minimum(level, f)
        outer = np.minimum(outer, f / pen_scale**2)
        params.append({"centre_mm": centre.round(1).tolist(), "radii_mm": radii.round(1).tolist(),
                       "penumbra_scale": round(float(pen_scale), 2)})
    wobble = 1.0 + 0.25 * _smooth_field(rng, shape, spacing).ravel()
    level = (level * wobble).reshape(shape)
    outer = (outer * wobble).reshape(shape)
    core = np.clip((1.0 - level) / 0.3, 0.0, 1.0) * tissue
    pen = np.clip((1.0 - outer) / 0.3, 0.0, 1.0) * tissue
    return core.astype(np.float32), pen.astype(np.float32), params


def synthesize_lesion_subject(index: int, *, spacing: float = 3.0, seed: int = 0,
                              channels: tuple[str, ...] | list[str] = DEFAULT_CHANNELS,
                              n_lesions: int | None = None, lesions: bool = True,
                              noise: float = 0.04, atlas: str = "desikan-killiany",
                              ) -> LesionSubject:
    """Generate lesion subject ``index`` of cohort ``seed`` (``lesions=False``: lesion-free twin)."""
    channels = _check_channels(channels)
    if n_lesions is not None and not 1 <= n_lesions <= 10:
        raise ValueError(f"n_lesions={n_lesions!r} must lie in 1..10 (or None for 1-3 at random)")
    if noise < 0:
        raise ValueError(f"noise={noise!r} is negative; pass 0 for no noise")
    grid, m, (_, r_noise, _, r_les) = subject_space(index, spacing=spacing, seed=seed, atlas=atlas,
                                                     maps=("gm", "wm"))
    brain = m["brain"]
    gm = np.clip(m["gm"], 0, 1) * brain
    wm = np.clip(m["wm"], 0, 1) * brain
    fluid = np.clip(1.0 - gm - wm, 0, 1) * brain
    tissue = (gm + wm) > 0.5
    count = int(n_lesions if n_lesions is not None else r_les.integers(1, 4))
    core_w, pen_w, params = _lesion_fields(r_les, tissue, grid.ijk_to_ras, count, float(spacing))
    if not lesions:
        core_w, pen_w = np.zeros_like(core_w), np.zeros_like(pen_w)
    label = np.zeros(grid.shape_ijk, dtype=np.uint8)
    label[pen_w > 0] = 2
    label[core_w > 0] = 1
    pen_only = pen_w * (1.0 - core_w)
    out: dict[str, np.ndarray] = {}
    for name in CHANNELS:  # draw noise for every channel so subsets agree
        g, w, f = _TISSUE[name]
        base = g * gm + w * wm + f * fluid
        cm, ca, pm, pa = _LESION[name]
        value = (base * (1 + core_w * (cm - 1) + pen_only * (pm - 1)) + core_w * ca + pen_only * pa)
        eps = r_noise.normal(0.0, noise * max(g, w), size=grid.shape_ijk).astype(np.float32)
        if name in channels:
            out[name] = (value + eps * brain).astype(np.float32)
    voxel_ml = float(spacing) ** 3 / 1000.0
    info = {"n_lesions": count if lesions else 0,
            "core_ml": float((label == 1).sum() * voxel_ml),
            "penumbra_ml": float((label == 2).sum() * voxel_ml),
            "lesions": params if lesions else []}
    return LesionSubject(subject_id=subject_id(index),
                         channels=_to_kji(np.stack([out[c] for c in channels])),
                         channel_names=channels, lesion=_to_kji(label), brain=_to_kji(brain),
                         grid=grid, info=info)


def generate_lesion_arrays(n_subjects: int, spacing: float = 3.0, seed: int = 0, *,
                           channels: tuple[str, ...] | list[str] = DEFAULT_CHANNELS,
                           ) -> LesionArrays:
    """The whole lesion cohort in memory (no files)."""
    if int(n_subjects) != n_subjects or n_subjects < 1:
        raise ValueError(f"n_subjects={n_subjects!r} must be a positive integer")
    subjects = [synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=channels)
                for i in range(int(n_subjects))]
    table = pd.DataFrame([{"subject_id": s.subject_id, "index": i,
                           **{k: v for k, v in s.info.items() if k != "lesions"}}
                          for i, s in enumerate(subjects)])
    return LesionArrays(images=np.stack([s.channels for s in subjects]),
                        lesions=np.stack([s.lesion for s in subjects]), table=table,
                        grid=subjects[0].grid, channel_names=tuple(channels))


def generate_lesion_cohort(out_dir: str | Path, n_subjects: int, spacing: float = 3.0,
                           seed: int = 0, *,
                           channels: tuple[str, ...] | list[str] = DEFAULT_CHANNELS,
                           overwrite: bool = False) -> pd.DataFrame:
    """Write ``sub-XXXX_<channel>.nii.gz`` per channel, ``sub-XXXX_lesion.nii.gz``, the manifest
    ``participants.csv`` (paths relative to ``out_dir``) and ``lesions.json``; return the
    manifest."""
    channels = _check_channels(channels)
    if int(n_subjects) != n_subjects or n_subjects < 1:
        raise ValueError(f"n_subjects={n_subjects!r} must be a positive integer")
    out = Path(out_dir)
    check_output_folder(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    rows, details = [], {}
    for i in range(int(n_subjects)):
        s = synthesize_lesion_subject(i, spacing=spacing, seed=seed, channels=channels)
        row = {"subject_id": s.subject_id, "index": i,
               **{k: v for k, v in s.info.items() if k != "lesions"}}
        for c, name in enumerate(channels):
            row[name] = f"{s.subject_id}_{name}.nii.gz"
            write_nifti(out / row[name], s.channels[c], s.grid)
        row["lesion"] = f"{s.subject_id}_lesion.nii.gz"
        write_nifti(out / row["lesion"], s.lesion, s.grid)
        rows.append(row)
        details[s.subject_id] = s.info["lesions"]
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / MANIFEST, index=False)
    (out / LESION_DESCRIPTION).write_text(json.dumps({
        "generator": "NeuroRelevanceLib.demo.lesions.generate_lesion_cohort",
        "n_subjects": int(n_subjects), "spacing_mm": float(spacing), "seed": int(seed),
        "channels": list(channels), "lesion_labels": {str(k): v for k, v in LESION_LABELS.items()},
        "tissue_baselines_gm_wm_fluid": {c: _TISSUE[c] for c in channels},
        "lesion_effects_core_mul_add_penumbra_mul_add": {c: _LESION[c] for c in channels},
        "lesions": details, "array_order": "nibabel [i, j, k], RAS affine in each NIfTI"},
        indent=2))
    return manifest


def load_lesion_cohort(out_dir: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`generate_lesion_cohort`, with absolute file paths."""
    out = Path(out_dir)
    if not (out / LESION_DESCRIPTION).is_file() or not (out / MANIFEST).is_file():
        raise FileNotFoundError(f"{out} holds no lesion cohort; generate one first with "
                                f"generate_lesion_cohort({str(out)!r}, n_subjects)")
    channels = json.loads((out / LESION_DESCRIPTION).read_text())["channels"]
    table = pd.read_csv(out / MANIFEST)
    for col in [*channels, "lesion"]:
        table[col] = [str((out / p).resolve()) for p in table[col]]
    return table
