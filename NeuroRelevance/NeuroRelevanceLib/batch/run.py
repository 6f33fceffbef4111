"""``explain_cohort``: one scan to a whole cohort, in this process or on Dask, resumable.

Order of work: the options are checked against the model card and the model is loaded once here
(so a bad model, option, table or scheduler is refused before anything is written); the output
folder is claimed (refused when it holds results of other settings, or files that are not a batch
run's outputs: a non-empty folder without ``batch.json``); complete subjects are skipped; the others
run as tasks (``batch_size`` subjects each) and stream their results; then the cohort outputs are
made from the written files, and the summary is written.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import remove_stale
from ..errors import InputError
from ..folder_owner import check_own_folder, is_empty
from ..vocabulary import OptionError, OptionNote
from .executor import LOST, InProcessExecutor, make_executor
from .options import DEFAULT_ATLASES, BatchOptions
from .outputs import COHORT, SETTINGS_FILE, SubjectFiles, claim_folder
from .scans import fingerprint
from .subjects import Subject, read_subjects
from .task import Plan, explain_subjects
from .worker import ModelSource, worker_model


@dataclass
class CohortExplanation:
    """What a batch run produced: the subjects table, the cohort tables and maps, the summary, the files."""

    subjects: pd.DataFrame                            # one row per subject: status, reason, files, ...
    regions: dict = field(default_factory=dict)       # atlas -> subjects × regions table (density)
    gain: dict = field(default_factory=dict)          # (atlas, "G vs REF") -> region gain table
    maps: dict = field(default_factory=dict)          # "all_mean", "group-AD_std", ... -> NIfTI path
    files: dict = field(default_factory=dict)         # every cohort file by kind
    summary: dict = field(default_factory=dict)
    out_dir: Path | None = None


def explain_cohort(subjects: Any, model: str | Path, out_dir: str | Path, *, method: str = "lrp",
                   preset: str | None = None, target: Any = None, filter: str | None = None,
                   filter_range: Sequence[float] = (0.0, 1.0), filter_placement: str = "input",
                   alpha: float | None = None, atlases: Sequence[str] = DEFAULT_ATLASES,
                   min_overlap: float = 0.5, min_region_voxels: float | None = None,
                   min_region_mm3: float | None = None, png: bool = True,
                   reference_group: str | None = None, gain_on: str = "positive", device: str = "auto",
                   batch_size: int = 1,
                   workers: int | None = None, scheduler: str | None = None, executor: Any = None,
                   overwrite: bool = False, trusted: bool = False,
                   progress: Callable[[dict], None] | None = None,
                   log: Callable[[str], None] | None = None, **engine_params: Any) -> CohortExplanation:
    """Explain every subject and write per-subject and cohort outputs to ``out_dir``.

    subjects: a CSV/TSV table (``path`` or ``path_<channel>``, optional ``id``, ``group``, covariates), a
        DataFrame of the same, scan paths (NIfTI, NRRD, MetaImage, DICOM folders; several channels
        comma-separated), scene volume nodes, or (array KJI, Grid) pairs.
    model: the model card (.json; its weights may be a state dict, TorchScript or .pt2 file).
    method, preset, target, filter, filter_range, filter_placement, alpha, ``engine_params`` (epsilon,
        gamma, ...): as for a single scan (``RelevanceLogic.run``). atlases: region tables, one per atlas.
    reference_group: the group the others' region gain is computed against (seed 004); gain_on: that gain on
        positive relevance (``"positive"``, default) or on |R| (``"absolute"``), as ``region_statistics``.
    workers / scheduler / executor: run on a new Dask LocalCluster of that many processes, on a
        running scheduler, or on a given :class:`DaskExecutor`; by default everything runs here.
    batch_size: subjects per task (each is still explained on its own, so maps never depend on it).
    overwrite: recompute every subject, even one with complete outputs from other settings.
    When no subject could be explained and ``out_dir`` was new or empty, everything the run wrote there is
    removed again: ``out_dir`` of the result is None and its ``summary`` gives every reason.
    progress: called with each subject's result as it finishes (and, if it has one, its ``start(n)``
        with the number of subjects to explain); log: called with status lines.
    """
    started = time.perf_counter()
    say = log or (lambda message: None)
    card_path = _card_path(model)
    from ..explanation.dispatch import check_format_runs
    from ..models import read_card
    from ..regions.statistics import DEFAULT_MIN_REGION_MM3, DEFAULT_MIN_REGION_VOXELS

    card = read_card(card_path)
    options = BatchOptions(method=method, preset=preset, target=target, filter=filter,
                           filter_range=tuple(filter_range), filter_placement=filter_placement, alpha=alpha,
                           engine_params=dict(engine_params), atlases=tuple(atlases or ()),
                           min_overlap=min_overlap,
                           min_region_voxels=DEFAULT_MIN_REGION_VOXELS if min_region_voxels is None
                           else min_region_voxels,
                           min_region_mm3=DEFAULT_MIN_REGION_MM3 if min_region_mm3 is None else min_region_mm3,
                           png=bool(png), reference_group=reference_group, gain_on=gain_on, device=device,
                           batch_size=batch_size).checked(card)
    people = read_subjects(subjects, card.input.channels)
    _check_reference(options.reference_group, people)
    _spare_inputs(subjects, people, card_path, options, out_dir)
    check_own_folder(out_dir, ("out_dir", "--output"), "explain", signatures=(SETTINGS_FILE,))
    _check_one_target(options, people, card)
    fresh, existed = is_empty(Path(out_dir).expanduser()), Path(out_dir).expanduser().is_dir()
    source = ModelSource(str(card_path), trusted, options.device)
    if executor is not None and (workers is not None or scheduler is not None):
        raise InputError("Give an executor, or workers / scheduler to make one, not both.")
    own = executor is None
    executor = executor if executor is not None else make_executor(workers, scheduler)
    try:
        # the model is loaded here first (on the CPU when workers run it): a model that cannot load is
        # refused before anything is written; in this process the tasks then use this very copy
        here = isinstance(executor, InProcessExecutor)
        loaded = worker_model(source if here else ModelSource(source.path, trusted, "cpu"))
        check_format_runs(loaded.model, options.method, options.engine_params.get("methods"))
        from .. import __version__

        key = options.key(card)
        out = claim_folder(out_dir, key, {"options": options.record(), "model": source.path,
                                          "software": f"NeuroRelevance {__version__}"}, overwrite)
        rows = _run(people, Plan(source, options, str(out), key), executor, overwrite, progress, say)
    finally:
        if own:
            executor.close()
    result = _finish(people, rows, options, out, executor.description, time.perf_counter() - started)
    counts = result.summary["counts"]
    if fresh and counts["failed"] and not counts["done"] and not counts["skipped"]:
        _remove_run(out, keep_folder=existed)  # nothing was explained: leave no folder of failures behind
        result.out_dir = None
    return result


def _card_path(model: Any) -> Path:
    path = Path(str(model))
    if not path.is_file():
        from ..models.loading import missing_model

        raise InputError(missing_model(path, "; give the model card (.json)"))
    if path.suffix.lower() != ".json":
        raise InputError(f"{path.name} is not a model card: batch runs need the card (.json) that gives the input "
                         "grid and normalisation; write one naming this file as its weights (see docs/pretrained.md).")
    return path.resolve()


def _spare_inputs(subjects: Any, people: list[Subject], card_path: Path, options: BatchOptions,
                  out_dir: str | Path) -> None:
    """Refuse an output folder where the run would write over one of its inputs (scan, table, model, atlas)."""
    from ..cli_checks import model_files, spare_inputs
    from .outputs import WRITES

    spare_inputs({"subject table": subjects if isinstance(subjects, (str, Path)) else None,
                  "scan": [c for s in people for c in s.channels if isinstance(c, (str, Path))],
                  "model": model_files(card_path), "atlas": list(options.atlases)},
                 folder=(("out_dir", "--output"), out_dir), writes=WRITES)


def _check_reference(reference: str | None, people: list[Subject]) -> None:
    if reference is None:
        return
    groups = sorted({s.group for s in people if s.group})
    if reference not in groups:
        raise OptionError("No subject is in the reference group (", ("reference_group", reference, "--reference-group"),
                          f"); the groups are {', '.join(groups) or 'none: add a group column to the table'}.")


def _check_one_target(options: BatchOptions, people: list[Subject], card) -> None:
    """Group maps and gain average subjects: refuse them for a classifier when each subject would be
    explained for its own predicted class (no target given)."""
    groups = sorted({s.group for s in people if s.group})
    if options.target is not None or card.output.type != "classification" or not (groups or
                                                                                 options.reference_group):
        return
    classes = list(card.output.classes) or ["0", "1"]
    given = options.reference_group
    reference: list[str | tuple] = [", ", ("reference_group", given, "--reference-group")] if given else []
    raise OptionError(f"The subjects are compared by group (groups {', '.join(groups)}", *reference, "), which "
                      "needs one target for all of them, but no target was given, so each subject would be "
                      "explained for its own predicted class; pass ", ("target", None), " with one of the model's "
                      f"classes ({', '.join(classes)}), e.g. ", ("target", classes[-1]), ".")


def _run(people: list[Subject], plan: Plan, executor, overwrite: bool, progress, say) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    pending = []
    for subject in people:
        files = SubjectFiles(plan.out_dir, subject.id)
        entry = None if overwrite else files.complete(plan.key, [fingerprint(c) for c in subject.channels])
        if entry is None:
            pending.append(subject)
        else:
            rows[subject.id] = {"id": subject.id, "group": subject.group, "status": "skipped",
                                "reason": "outputs already complete", "prediction": entry.get("prediction"),
                                "target": entry.get("target"), "seconds": 0.0, "files": files.listed(entry)}
    say(f"{len(people)} subjects: {len(rows)} already complete, {len(pending)} to explain; running "
        f"{executor.description}")
    if hasattr(progress, "start"):
        progress.start(len(pending))
    size = plan.options.batch_size
    chunks = [pending[i:i + size] for i in range(0, len(pending), size)]
    for chunk, outcome in executor.run(explain_subjects, chunks, plan):
        results = outcome if outcome != LOST else [
            {"id": s.id, "group": s.group, "status": "failed",
             "reason": "the worker explaining it died repeatedly (out of memory?); run it alone to see why"}
            for s in chunk]
        for result in results:
            rows[result["id"]] = result
            if progress is not None:
                progress(result)
    return rows


def _finish(people: list[Subject], rows: dict, options: BatchOptions, out: Path, executor: str,
            seconds: float) -> CohortExplanation:
    import json

    from .group import cohort_record, gain_tables, group_maps, region_tables
    from .summary import subjects_table, write_summary

    for folder in (out, out / COHORT):  # what an interrupted earlier run was writing there
        remove_stale(folder)
    ordered = [{**rows[s.id], "group": s.group, "covariates": dict(s.covariates)} for s in people if s.id in rows]
    complete = [{**row, "files": {k: Path(v) for k, v in row["files"].items()}}
                for row in ordered if row["status"] != "failed"]
    notes: list[str] = [OptionNote(f"{row['id']}: ", row["reason"]) for row in complete
             if row["status"] == "done" and row.get("reason")]
    result = CohortExplanation(subjects_table(ordered), out_dir=out)
    targets = sorted({str(row.get("target")) for row in complete})
    if complete:
        sidecar = Path(str(complete[0]["files"]["relevance"]).replace(".nii.gz", ".json"))
        record = cohort_record(json.loads(sidecar.read_text(encoding="utf-8"))["record"])
        result.regions, files = region_tables(complete, options.atlases, out)
        result.files.update(files)
    if len(targets) > 1:  # averaging maps of different classes would be silently wrong
        notes.append(OptionNote("no group maps or gain: the subjects were explained for different classes "
                                f"({', '.join(targets)}: each its predicted class); pass ", ("target", None),
                                " to explain every subject for one class"))
        _remove_group_results(out / COHORT)
    elif complete:
        result.maps, map_notes = group_maps(complete, out, record)
        result.gain, files, gain_notes = gain_tables(complete, options.atlases, options.reference_group, out,
                                                     options, record)
        result.files.update(files)
        notes += map_notes + gain_notes
    result.files.update({"summary": out / "summary.json", "subjects": out / "subjects.csv"})
    result.summary = write_summary(out, result.subjects, ordered, executor, options.record(), notes,
                                   {**result.files, **result.maps}, seconds)
    return result


def _remove_group_results(folder: Path) -> None:
    """Remove an earlier run's group maps and gain tables, which no longer describe this folder's subjects."""
    for pattern in ("*_mean.nii.gz", "*_mean.json", "*_std.nii.gz", "*_std.json", "gain_*.csv"):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)


def _remove_run(out: Path, keep_folder: bool) -> None:
    """Remove everything a run wrote into ``out``, which was new or empty before it (and the folder
    itself unless ``keep_folder``)."""
    import shutil

    from ..folder_owner import IGNORED

    for path in out.iterdir():
        if path.name in IGNORED:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if not keep_folder:
        with contextlib.suppress(OSError):
            out.rmdir()
