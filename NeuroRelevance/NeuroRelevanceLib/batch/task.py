"""One subject, start to finish, where it runs (a Dask worker or this process).

Reads the subject's scans, runs the single-scan workflow (``jobs.compute``: model grid, method,
back onto the scan grid, region statistics, settings record), checks the map, and writes the
raw map with its sidecar, one region table per atlas, the labelled PNG and, last, the completion
marker. A subject whose input is bad (unreadable, wrong grid, NaN...) comes back as ``failed`` with
the reason, and whatever it had written is removed; only a model that cannot be loaded stops the
run (every subject would fail the same way).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, remove_stale
from ..errors import InputError
from ..vocabulary import OptionError, OptionNote
from .options import BatchOptions
from .outputs import SubjectFiles
from .scans import fingerprint, read_scan
from .subjects import Subject
from .worker import ModelSource, model_loads, process_info, worker_model


@dataclass(frozen=True)
class Plan:
    """What every task needs besides its subjects: the model, the checked options, the folder, the key."""

    model: ModelSource
    options: BatchOptions
    out_dir: str
    key: str


def explain_subjects(subjects: list[Subject], plan: Plan) -> list[dict]:
    """The task: explain ``subjects`` one after the other with the worker's model; one result each."""
    loaded = worker_model(plan.model)
    return [explain_subject(subject, loaded, plan) for subject in subjects]


def explain_subject(subject: Subject, loaded, plan: Plan) -> dict:
    """Explain one subject and write its outputs; returns its result (status done or failed)."""
    started = time.perf_counter()
    files = SubjectFiles(plan.out_dir, subject.id)
    result: dict[str, Any] = {"id": subject.id, "group": subject.group}
    written: list[Path] = []
    try:
        remove_stale(files.folder)
        inputs = [fingerprint(c) for c in subject.channels]
        channels = [c if isinstance(c, tuple) else read_scan(c) for c in subject.channels]
        job = _compute(subject, channels, loaded, plan.options)
        outputs, notes = _write(job, files, plan.options, written)
        notes = [*job.notes, *notes]
        entry = {"id": subject.id, "settings_key": plan.key, "inputs": inputs, "prediction": job.prediction,
                 "target": job.label, "conservation_error": float(job.explanation.max_conservation_error),
                 "notes": notes, "seconds": round(time.perf_counter() - started, 3)}
        files.write_marker(entry, outputs)
        result.update(status="done", reason=OptionNote(*_joined(notes)),
                      prediction=job.prediction,
                      target=job.label, files={k: str(v) for k, v in outputs.items()})
    except InputError as exc:
        _remove(written)
        result.update(status="failed", reason=OptionNote(exc))  # the library's text; the command line: flags
    except Exception as exc:  # a bug or an unforeseen failure in one subject: report it, keep going
        _remove(written)
        result.update(status="failed", reason=f"unexpected {type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    result.update(seconds=round(time.perf_counter() - started, 3), model_loads=model_loads(plan.model),
                  **process_info())
    return result


def _compute(subject: Subject, channels: list, loaded, options: BatchOptions):
    from ..jobs import Job, compute

    ids = [str(c) if not isinstance(c, tuple) else f"{subject.id}:{i}" for i, c in enumerate(subject.channels)]
    job = Job(loaded, channels, ids, options.settings(loaded.card), list(subject.names))
    compute(job)
    for c, raw in enumerate(job.raw):
        if not np.all(np.isfinite(raw)):
            raise InputError(f"The relevance map of channel {loaded.card.input.channels[c]} is not finite; "
                             "check the scan's intensities.")
    return job


def _write(job, files: SubjectFiles, options: BatchOptions, written: list[Path]) -> tuple[dict, list[str]]:
    """Write the maps, tables and PNG of a computed job; returns (kind -> path, notes)."""
    from ..heatmap_files import write_heatmap
    from ..jobs import statistics_map
    from ..regions import write_csv

    files.folder.mkdir(parents=True, exist_ok=True)
    card, grid = job.loaded.card, job.channels[0][1]
    outputs: dict[str, Path] = {}
    names = list(card.input.channels)
    if len(names) == 1:
        values = "raw relevance"
    else:
        values = f"raw relevance summed over channels {', '.join(names)} (on the {names[0]} scan's grid)"
        for c, name in enumerate(names):
            path, sidecar = write_heatmap(files.channel(name), job.raw[c], job.channels[c][1], job.record)
            written += [path, sidecar]
            outputs[f"relevance_{name}"] = path
    path, sidecar = write_heatmap(files.relevance, statistics_map(job), grid, job.record, values)
    written += [path, sidecar]
    outputs["relevance"] = path
    notes: list[str] = []
    for index, atlas in enumerate(options.atlases):
        try:
            table = _region_table(job, index, atlas)
        except InputError as exc:  # the map stays; the summary says why this table is missing
            notes.append(OptionNote(f"no {atlas} table: ", exc))
            continue
        target = files.regions(atlas)
        with atomic_path(target) as staged:
            write_csv(table, staged)
        written.append(target)
        outputs[f"regions_{atlas}"] = target
    if options.png:
        outputs["png"], empty = _render_png(job, files.png, files.id)
        written.append(outputs["png"])
        notes += [empty] if empty else []
    return outputs, notes


def _region_table(job, index: int, atlas: str):
    """The job's own table for the first atlas (computed by ``jobs.compute``), a new one for the others."""
    from ..jobs import region_table

    if index == 0 and job.table_error:
        raise OptionError(job.table_error)
    if index == 0 and job.table is not None:
        return job.table
    s = job.settings
    return region_table(job, atlas, s.min_overlap, s.min_region_voxels, s.min_region_mm3)


def _render_png(job, path: Path, subject_id: str) -> tuple[Path, str | None]:
    """Axial, sagittal and coronal slices through the strongest positive relevance, labelled (orientation
    letters, positions, colour bar, caption with the run's record), drawn by Slicer's slice logic; with
    a note when the displayed map is empty (a filter that keeps no voxel: no overlay)."""
    import slicer

    from .. import mrml
    from ..logic import RelevanceLogic

    scene = slicer.vtkMRMLScene()
    views = mrml.SliceViews(scene, size=(256, 256))
    names = job.loaded.card.input.channels
    nodes = [mrml.array_to_volume(scene, array, grid, f"{job.volume_names[c]} ({names[c]})")
             for c, (array, grid) in enumerate(job.channels)]
    ids = job.volume_ids
    job.volume_ids = [node.GetID() for node in nodes]
    try:
        RelevanceLogic(scene, views).apply(job)
    finally:
        job.volume_ids = ids
    from ..annotation import compose
    from ..mrml.legend import caption_for, colour_bar_for
    from ..mrml.views import write_png

    offsets = views.offsets_through(_focus(job.raw[0], job.channels[0][1]))
    tiles = [views.tile(view, True, offsets[view]) for view in ("Red", "Yellow", "Green")]
    heatmap = views.foreground()
    subject = f"Subject {subject_id}: {', '.join(job.volume_names)}"
    pixels, _ = compose(tiles, colour_bar_for(heatmap), [subject] + caption_for(heatmap))
    with atomic_path(path) as staged:
        write_png(staged, pixels)
    from ..scene_export import empty_note

    return path, empty_note(heatmap)


def _focus(raw: np.ndarray, grid) -> np.ndarray:
    """RAS point the slices go through: the relevance-weighted centre of the top 1% positive relevance
    (the scan's centre when there is none)."""
    positive = np.clip(raw, 0, None)
    if positive.max() > 0:
        weights = np.where(positive >= np.quantile(positive[positive > 0], 0.99), positive, 0.0)
        k, j, i = (float((axis * weights).sum() / weights.sum()) for axis in np.indices(raw.shape))
    else:
        k, j, i = ((n - 1) / 2.0 for n in raw.shape)
    return (grid.ijk_to_ras @ np.array([i, j, k, 1.0]))[:3]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _joined(notes: list) -> list:
    """``notes`` with "; " between them (parts of one :class:`~..vocabulary.OptionNote`)."""
    return [part for i, note in enumerate(notes) for part in (("; ", note) if i else (note,))]
