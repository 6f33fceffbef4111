"""Where a batch run writes, and how a re-run knows what is already complete.

Layout of the output folder::

    batch.json                         the run's settings and their key (one settings per folder)
    subjects/<id>/<id>_relevance.nii.gz (+ .json sidecar)   raw relevance on the scan grid
    subjects/<id>/<id>_relevance_<channel>.nii.gz            per channel (multi-channel models)
    subjects/<id>/<id>_regions_<atlas>.csv                   region table per atlas (scan grid)
    subjects/<id>/<id>_overview.png                          labelled slices through the relevance
    subjects/<id>/<id>_done.json                             completion marker, written last
    cohort/...                          group maps and tables (see :mod:`.group`)
    summary.json, subjects.csv          what happened to every subject

A subject is complete when its marker exists, names the current settings key and input
fingerprints, and every file it lists (and every map's JSON sidecar) exists with the recorded size
and SHA-256, each sidecar readable. Every file is written under
a temporary name and renamed (see :mod:`..atomic`), so an interrupted run leaves complete files or
none, and the marker only after all of them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..atomic import write_text
from ..vocabulary import OptionError

SETTINGS_FILE = "batch.json"
SUBJECTS = "subjects"
COHORT = "cohort"
#: every path a run writes (or cleans up) in its output folder; an input lying there is refused
WRITES = (SETTINGS_FILE, "summary.json", "subjects.csv", f"{SUBJECTS}/*", f"{COHORT}/*", ".tmp-*")


def atlas_tag(atlas: str) -> str:
    """A file-name-safe tag for an atlas name or label-map path ("AAL3", "my_atlas")."""
    name = Path(str(atlas)).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "atlas"


class SubjectFiles:
    """The output paths of one subject."""

    def __init__(self, out_dir: str | Path, subject_id: str) -> None:
        self.id = subject_id
        self.folder = Path(out_dir) / SUBJECTS / subject_id

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.id}_{suffix}"

    @property
    def relevance(self) -> Path:
        return self.path("relevance.nii.gz")

    def channel(self, channel: str) -> Path:
        return self.path(f"relevance_{re.sub(r'[^A-Za-z0-9.-]+', '_', channel)}.nii.gz")

    def regions(self, atlas: str) -> Path:
        return self.path(f"regions_{atlas_tag(atlas)}.csv")

    @property
    def png(self) -> Path:
        return self.path("overview.png")

    @property
    def marker(self) -> Path:
        return self.path("done.json")

    def write_marker(self, entry: dict, files: dict[str, Path]) -> None:
        """Write the completion marker listing ``files`` (kind -> path) and each map's JSON sidecar with
        their sizes and SHA-256; last step."""
        listed = {kind: self._item(Path(p)) for kind, p in files.items()}
        sidecars = [_sidecar(Path(p)) for p in files.values() if str(p).endswith(".nii.gz")]
        entry = {**entry, "files": listed, "sidecars": [self._item(p) for p in sidecars if p.is_file()]}
        write_text(self.marker, json.dumps(entry, indent=2, default=str) + "\n")

    def _item(self, path: Path) -> dict:
        from ..provenance import file_sha256

        return {"name": str(path.relative_to(self.folder)), "bytes": path.stat().st_size,
                "sha256": file_sha256(path)}

    def complete(self, key: str, inputs: list[str]) -> dict | None:
        """The marker of complete outputs made with ``key`` from ``inputs``; None when anything differs:
        a listed file or a map's sidecar is missing, of another size or content, or a sidecar is no JSON."""
        try:
            entry = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("settings_key") != key or entry.get("inputs") != inputs:
            return None
        items = list(entry.get("files", {}).values()) + list(entry.get("sidecars", []))
        if not all(self._intact(item) for item in items):
            return None
        maps = [self.folder / item["name"] for item in entry.get("files", {}).values()
                if item["name"].endswith(".nii.gz")]
        for sidecar in map(_sidecar, maps):  # markers of older runs list no sidecars: read them
            try:
                json.loads(sidecar.read_text(encoding="utf-8"))["record"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return entry

    def _intact(self, item: dict) -> bool:
        from ..provenance import file_sha256

        path = self.folder / item["name"]
        if not path.is_file() or path.stat().st_size != item["bytes"]:
            return False
        return "sha256" not in item or file_sha256(path) == item["sha256"]

    def listed(self, entry: dict) -> dict[str, Path]:
        """The files a marker lists, as kind -> absolute path."""
        return {kind: self.folder / item["name"] for kind, item in entry.get("files", {}).items()}


def _sidecar(path: Path) -> Path:
    """The JSON sidecar of a ``.nii.gz`` map."""
    return Path(str(path)[: -len(".nii.gz")] + ".json")


def claim_folder(out_dir: str | Path, key: str, record: dict, overwrite: bool) -> Path:
    """Check that ``out_dir`` can hold this run (a folder, empty or written with the same settings)
    and record the settings in it; refuse other settings unless ``overwrite``. Nothing is written
    when it is refused."""
    out = Path(out_dir).expanduser().absolute()  # workers may run in another folder
    if out.exists() and not out.is_dir():
        raise OptionError(("out_dir", str(out), "--output"), " is a file; give a folder (it is created when missing).")
    settings = out / SETTINGS_FILE
    if settings.is_file() and not overwrite:
        try:
            earlier = json.loads(settings.read_text(encoding="utf-8"))
        except ValueError:
            earlier = {}
        if earlier.get("key") != key:
            from .options import changed_options

            changed: list[dict | str] = [*changed_options(earlier.get("options", {}), record["options"])]
            changed = changed or ["the model files"]
            listed = [q for i, part in enumerate(changed) for q in ([part] if i == 0 else ["; ", part])]
            raise OptionError(f"{out} holds results made with other settings (", *listed, "); choose another output "
                              "folder, or pass ", ("overwrite", True, "--overwrite"), " to recompute every subject "
                              "there.")
    out.mkdir(parents=True, exist_ok=True)
    write_text(settings, json.dumps({"key": key, **record}, indent=2, default=str) + "\n")
    return out
