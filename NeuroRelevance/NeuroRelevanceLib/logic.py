"""Scene-level workflow: the one place where MRML, the model, the engine and the statistics meet.

The Slicer module's Logic and the command line both delegate here. Every method works on the
scene given at construction, never on the global ``slicer.mrmlScene``. A run has three steps:
:meth:`RelevanceLogic.prepare` (main thread: load the model, copy the volumes),
:func:`jobs.compute` (heavy, no MRML: a GUI may run it on a worker thread) and
:meth:`RelevanceLogic.apply` (main thread: add the nodes). :meth:`RelevanceLogic.run` does all three.

Scene changes are transactions: ``apply`` first builds and checks everything it will add
(:meth:`RelevanceLogic.plan`, an :class:`mrml.OutputPlan`), adds the new nodes beside an earlier
run with the same key (``mrml.commit``, inside an ``mrml.SceneChange`` that undoes a failure) and
removes the earlier run last; a failure at any step leaves the scene as it was. Calls on a run
whose output volumes the user deleted are refused with one clear error.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import mrml, provenance
from .errors import InputError
from .explanation.filters import FilterCache
from .jobs import Job, Progress, Settings, compute, setting_names
from .windowing import DEFAULT_THRESHOLD, ROBUST_WINDOW

#: node attribute that identifies the run an output belongs to (same inputs and settings)
RUN_KEY = "NeuroRelevance.runKey"


@dataclass
class HeatmapOutput:
    """What one run left in the scene and on disk (``files``: the last export's); ``raw`` is the
    unfiltered map (KJI) when known."""

    node: Any
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # what the last export said (see scene_export)
    raw: np.ndarray | None = field(default=None, repr=False)


@dataclass
class RunResult:
    """One explained scan: output nodes per input channel, the table, and the job behind them.

    ``job.raw`` holds the unfiltered relevance resampled onto each channel's grid, so a change of
    filter, threshold or opacity updates the overlay without running the network again.
    """

    outputs: list[HeatmapOutput]
    job: Job
    table_nodes: dict = field(default_factory=dict)   # atlas name -> table node, one per atlas
    tables: dict = field(default_factory=dict)        # atlas name -> region table
    _caches: list = field(default_factory=list, repr=False)

    def filter_caches(self) -> list:
        """Per-channel :class:`explanation.filters.FilterCache` of the raw maps, one normaliser for all channels."""
        if not self._caches:
            peak = max(float(np.max(np.abs(raw))) for raw in self.job.raw)
            self._caches = [FilterCache(raw, peak) for raw in self.job.raw]
        return self._caches

    @property
    def window(self) -> float:
        """The display window shared by all channels (robust: see ``windowing``)."""
        return self.filter_caches()[0].window

    @property
    def node(self):
        return self.outputs[0].node

    @property
    def explanation(self):
        return self.job.explanation

    @property
    def raw_source(self) -> list[np.ndarray]:
        return self.job.raw

    @property
    def table(self):
        """The most recent region table (the run's own, or the last added)."""
        return next(reversed(self.tables.values())) if self.tables else None

    @property
    def table_node(self):
        return next(reversed(self.table_nodes.values())) if self.table_nodes else None

    @property
    def record(self) -> dict:
        """What produced this run (see :mod:`provenance`)."""
        return self.job.record

    def stale_reasons(self, settings: Mapping[str, Any], model: Any = None, volumes: Any = None) -> list[str]:
        """Why this run no longer matches ``settings`` (the keywords of :meth:`RelevanceLogic.run`)."""
        from .provenance import differences

        reasons = differences(self.record, settings, model)
        if volumes is not None and [v.GetID() if hasattr(v, "GetID") else v for v in volumes] != self.job.volume_ids:
            reasons.append("input volumes changed")
        return reasons

    @property
    def prediction(self) -> str:
        return self.job.prediction


class RelevanceLogic:
    """Explains scans in a scene and turns relevance into labelled, displayed output volumes."""

    def __init__(self, scene, views: mrml.SliceViews | None = None) -> None:
        if scene is None:
            raise InputError("No MRML scene was given.")
        self.scene = scene
        self.views = views

    def add_heatmap(self, source, relevance_kji: np.ndarray, method: str, *,
                    parameters: Mapping[str, Any] | None = None, target: Any = None,
                    conservation_error: float | None = None, opacity: float = 0.5,
                    threshold: float = DEFAULT_THRESHOLD, positive_only: bool = False,
                    folder: str | int | None = None) -> HeatmapOutput:
        """Add ``relevance_kji`` (on the grid of ``source``) as a heatmap shown over ``source``.

        ``threshold``: |R| below this fraction of the display window is transparent (default
        :data:`windowing.DEFAULT_THRESHOLD`, as for runs and exports).
        """
        _check_display(opacity, threshold)
        with mrml.SceneChange(self.scene):  # all or nothing
            node = mrml.create_heatmap_volume(
                self.scene, source, relevance_kji, method, parameters=parameters, target=target,
                conservation_error=conservation_error, folder=folder)
            mrml.show_heatmap(self.scene, node, source, opacity=opacity, threshold=threshold,
                              positive_only=positive_only)
        return HeatmapOutput(node)

    def prepare(self, volumes: Sequence[Any], model: Any, *, trusted: bool = False,
                device: Any = "auto", **settings: Any) -> Job:
        """Check the inputs, load the model if a path is given and copy the volumes' voxels."""
        from .models import LoadedModel, load_model

        options = Settings(**_known_settings(settings)).check()
        if isinstance(options.atlas, str):
            options.resolve_atlas_name()
        options.atlas = scene_atlas(options.atlas)
        _check_display(options.opacity, options.threshold)
        from .explanation.filters import check_filter

        check_filter(options.filter, options.filter_range, options.filter_placement)
        loaded = model if isinstance(model, LoadedModel) else load_model(
            model, trusted=trusted, device=device)
        if loaded.card is None:
            raise InputError("A model card is needed (it gives the input grid and normalisation): "
                             "load a card JSON, or write one for this model (see docs/pretrained.md).")
        names = loaded.card.input.channels
        if not volumes or any(v is None for v in volumes):
            raise InputError(f"Select one input volume per model channel ({', '.join(names)}).")
        from .scan_kind import refuse_label_node

        for node, channel in zip(volumes, names, strict=False):
            refuse_label_node(node, channel if len(names) > 1 else "")
        channels = [mrml.volume_to_array(node) for node in volumes]
        return Job(loaded, channels, [v.GetID() for v in volumes], options.resolve(loaded.card),
                   [v.GetName() for v in volumes])

    def apply(self, job: Job) -> RunResult:
        """Add a computed job's output volumes (one per channel) and table to the scene.

        Everything is built and checked first (:meth:`plan`); the new nodes are then added beside
        an earlier run with the same key, and only once they are all in place and shown is the
        earlier run removed. A failure at any step leaves the scene as it was.
        """
        s = job.settings
        run = RunResult([], job)
        plan = self.plan(job, run)
        volumes, tables = mrml.commit(
            self.scene, plan, lambda nodes: self._show(nodes, run, s.opacity, s.threshold, s.positive_only))
        run.outputs = [HeatmapOutput(node, raw=job.raw[c]) for c, node in enumerate(volumes)]
        for table_node, planned in zip(tables, plan.tables, strict=True):
            run.tables[planned.frame.attrs["atlas"]] = planned.frame
            run.table_nodes[planned.frame.attrs["atlas"]] = table_node
        for note in job.notes:  # also in the record (node attribute, sidecar): e.g. a scan like a label map
            warnings.warn(note[0].upper() + note[1:] + ".", UserWarning, stacklevel=2)
        return run

    def plan(self, job: Job, run: RunResult | None = None) -> mrml.OutputPlan:
        """What :meth:`apply` will add for ``job`` (all checked; the scene is not changed)."""
        s = job.settings
        if job.explanation is None or len(job.raw) != len(job.volume_ids):
            raise InputError("This run has not been computed yet: call jobs.compute(job) before apply.")
        volumes = [self.scene.GetNodeByID(node_id) for node_id in job.volume_ids]
        if any(v is None for v in volumes):
            raise InputError("An input volume was removed from the scene during the run; run again.")
        _check_display(s.opacity, s.threshold)
        if s.atlas is not None and job.table is None and s.table_required:  # asked for a table: none, no run
            name = getattr(s.atlas, "name", s.atlas)
            raise InputError(f"No region table could be made against the atlas '{name}', so nothing was changed "
                             f"(an earlier run stays as it was): {job.table_error or 'it was not computed.'} To see "
                             "the map alone, run without an atlas (atlas=None).")
        channels = job.loaded.card.input.channels
        for c, raw in enumerate(job.raw):
            mrml.volumes.check_array(raw, f"relevance map for '{channels[c]}' (the network or method "
                                          "produced non-finite relevance; nothing was changed)")
        run = run or RunResult([], job)
        method = f"{s.label} · {job.label}"
        parameters = {"method": s.method, "preset": s.preset, "target": job.label, "filter": s.filter,
                      "filter_range": [float(v) for v in s.filter_range],
                      "filter_placement": s.filter_placement, "model": job.loaded.card.name,
                      **{k: v for k, v in s.engine_params.items() if _plain(v)}}
        attributes = {RUN_KEY: job.key, provenance.RECORD_ATTRIBUTE: provenance.to_json(job.record)}
        shown = (s.filter if s.filter_placement == "input" else None, s.filter_range)
        planned = [mrml.PlannedVolume(
            volume, job.raw[c] if s.filter_placement == "every-layer" else
            run.filter_caches()[c].apply(s.filter, s.filter_range), method,
            parameters={**parameters, "channel": channels[c]}, target=job.label,
            conservation_error=job.explanation.max_conservation_error, attributes=attributes, shown=shown)
            for c, volume in enumerate(volumes)]
        tables = [] if job.table is None else [
            self._planned_table(job.table, f"{volumes[0].GetName()} · {method}", job)]
        return mrml.OutputPlan(planned, tables, replaces=self.run_nodes(job.key))

    def _planned_table(self, table, stem: str, job: Job) -> mrml.PlannedTable:
        """A region table as its node will be: name, run key, record, grid."""
        record = table.attrs.get("provenance") or job.record
        return mrml.PlannedTable(table, f"{stem} · regions ({table.attrs['atlas']}, scan grid)",
                                 {RUN_KEY: job.key, provenance.RECORD_ATTRIBUTE: provenance.to_json(record),
                                  "NeuroRelevance.grid": str(table.attrs.get("grid", ""))})

    def _show(self, nodes: list, run: RunResult, opacity: float, threshold: float,
              positive_only: bool) -> None:
        for index, node in enumerate(nodes):
            mrml.show_heatmap(self.scene, node, opacity=opacity, threshold=threshold,
                              positive_only=positive_only, window=run.window, in_views=index == 0,
                              window_source=ROBUST_WINDOW)

    def _display(self, run: RunResult, opacity: float, threshold: float, positive_only: bool) -> None:
        """Same window and colours for every channel; channel 0 over its scan in the views."""
        self._show([out.node for out in run.outputs], run, opacity, threshold, positive_only)

    def _require_outputs(self, run: RunResult) -> None:
        """Refuse a run whose output volumes are no longer in this scene (deleted by the user)."""
        if not run.outputs:
            raise InputError("This run has no output volume in the scene; run again (Apply).")
        for out in run.outputs:
            if out.node is None or out.node.GetScene() is not self.scene:
                name = out.node.GetName() if out.node is not None else "output"
                raise InputError(f"The output volume '{name}' of this run was deleted from the scene; "
                                 "run again (Apply) to make it again.")

    def add_region_table(self, run: RunResult, atlas: Any, min_overlap: float = 0.5, **sizes: float):
        """Region statistics of a finished run against ``atlas`` (name, path or scene label map).

        Computed on the overlay's scan grid like the run's own table; ``sizes``:
        ``min_region_voxels``/``min_region_mm3``. Each atlas gets its own table node (the same atlas
        again replaces its table; a table the user deleted is made again); an unknown atlas name is
        refused. A refusal leaves the run and the scene as they were.
        """
        from .jobs import region_table

        self._require_outputs(run)
        if isinstance(atlas, str):
            Settings(atlas=atlas).resolve_atlas_name()
        table = region_table(run.job, scene_atlas(atlas), min_overlap, **sizes)
        stem = run.node.GetAttribute("NeuroRelevance.baseName") or run.node.GetName()
        planned = self._planned_table(table, stem, run.job)
        name = table.attrs["atlas"]
        node = run.table_nodes.get(name)
        with mrml.SceneChange(self.scene):
            if node is not None and node.GetScene() is self.scene:
                mrml.tables.table_from_columns(self.scene, planned.columns, node.GetName(), node=node)
            else:
                node = mrml.tables.table_from_columns(self.scene, planned.columns, planned.name)
                folder = mrml.output_folder(self.scene, run.node)
                if folder:
                    mrml.outputs.place_in_folder(self.scene, node, folder)
            for key, value in planned.attributes.items():
                node.SetAttribute(key, value)
        run.tables.pop(name, None)
        run.table_nodes.pop(name, None)
        run.tables[name], run.table_nodes[name] = table, node
        return run.table_node

    def run(self, volumes: Sequence[Any], model: Any, *, progress: Progress | None = None,
            trusted: bool = False, device: Any = "auto", **settings: Any) -> RunResult:
        """Explain one scan (one volume node per model input channel) and show the result.

        ``model`` is a loaded model (:func:`models.load_model`) or a path to load; ``settings``
        are those of :class:`jobs.Settings` (``method``, ``preset``, ``target`` (class name or index),
        ``filter``, ``filter_range``, ``filter_placement``, ``atlas``, ``opacity``,
        ``threshold``, ``positive_only``) plus engine keywords (``epsilon``, ``gamma``, ...).
        Outputs are named ``"<volume> · LRP <preset> · <target>"`` (``"<volume> · <method> · <target>"`` for
        ``method="gradcam"`` and the other methods of :mod:`methods`) and sit in one
        subject-hierarchy folder with the region table. Running again with the same inputs and
        settings replaces that run's nodes (never the inputs). Bad input adds no node: settings are
        checked first (a misspelled keyword is refused with the closest known name), and a run that
        asks for an atlas whose table cannot be made fails as a whole (``table_required=False``
        keeps the map and records why in ``run.job.table_error``).
        """
        job = self.prepare(volumes, model, trusted=trusted, device=device, **settings)
        return self.apply(compute(job, progress))

    def refilter(self, run: RunResult, filter: str | None, filter_range=(0.0, 1.0), *,
                 opacity: float = 0.5, threshold: float = DEFAULT_THRESHOLD, positive_only: bool = False) -> None:
        """Re-apply an input-placement filter and display settings from the cached raw maps."""
        from .explanation.filters import check_filter

        _check_display(opacity, threshold)
        self._require_outputs(run)
        if run.job.settings.filter_placement == "every-layer" and filter is not None:
            raise InputError("This run was filtered after every layer during propagation; a new "
                             "filter needs a new run (Apply). Opacity and threshold can change.")
        check_filter(filter, filter_range, "input")  # before any voxel is rewritten
        for out, cache in zip(run.outputs, run.filter_caches(), strict=True):
            buffer = mrml.volume_buffer(out.node)  # the node's own voxels: filtered in place
            cache.apply(filter, filter_range, out=buffer)
            mrml.mark_modified(out.node)
            out.node.SetAttribute("NeuroRelevance.displayFilter", json.dumps(
                {"filter": filter, "filter_range": [float(v) for v in filter_range]}))
            mrml.display.label_values(out.node, filter, filter_range)
        self._display(run, opacity, threshold, positive_only)

    def run_nodes(self, key: str | None = None) -> list:
        """Output volumes and tables of the run with this key (of every run when ``key`` is None)."""
        found = []
        for class_name in ("vtkMRMLScalarVolumeNode", "vtkMRMLTableNode"):
            for i in range(self.scene.GetNumberOfNodesByClass(class_name)):
                node = self.scene.GetNthNodeByClass(i, class_name)
                if node.GetAttribute(RUN_KEY) and key in (None, node.GetAttribute(RUN_KEY)):
                    found.append(node)
        return found

    def remove_run(self, key: str) -> int:
        """Remove the output volumes and tables of an earlier run with this key; returns the count.

        Their hierarchy items, display and storage nodes, colour tables and the folders they
        leave empty go with them.
        """
        doomed = self.run_nodes(key)
        folders = {mrml.output_folder(self.scene, node) for node in doomed} - {0}
        for node in doomed:
            mrml.outputs.remove_with_companions(self.scene, node)
        mrml.outputs.remove_empty_folders(self.scene, folders)
        return len(doomed)

    def export(self, output: HeatmapOutput, folder: str | Path, stem: str = "heatmap",
               views: tuple[str, ...] = ("Red", "Yellow", "Green"), displayed: bool = False) -> HeatmapOutput:
        """Write one output's files: its heatmap (NIfTI + JSON sidecar) and, with slice views, labelled PNGs.

        Only what belongs to ``output`` is written: ``<stem>.nii.gz`` (the raw relevance, always; with
        ``displayed=True`` also the map as shown, filtered, as ``<stem>-displayed.nii.gz``), ``<stem>.json``
        (the settings record) and, when the logic has slice views, ``<stem>_<view>.png`` of this output's
        own scan under its own map and caption (the views are put back as they were). No other volume
        of the scene and no scene file is written (save a whole scene on purpose with
        :func:`mrml.save_scene`). All or nothing: a failure leaves no partial file, no new folder and no
        node added. ``output.files``/``output.notes`` then list this export's files and notes (an empty
        displayed map; no PNG when the output's scan was deleted), notes also as ``UserWarning``.
        See :mod:`scene_export`.
        """
        from .scene_export import export_output

        return export_output(self.scene, self.views, output, folder, stem, views, displayed)


def scene_atlas(atlas: Any) -> Any:
    """A scene label map or segmentation becomes a regions.Atlas; other atlases pass through."""
    if atlas is None or not hasattr(atlas, "IsA"):
        return atlas
    from .regions import Atlas

    labels, grid, names = mrml.labels.labelmap_arrays(atlas)
    return Atlas(labels, grid, names, name=atlas.GetName(), space="scene")


def _known_settings(settings: dict) -> dict:
    known = set(setting_names())
    options = {k: v for k, v in settings.items() if k in known}
    options["engine_params"] = {k: v for k, v in settings.items() if k not in known}
    if "filter_range" in options:
        options["filter_range"] = tuple(options["filter_range"])
    return options


def _check_display(opacity: float, threshold: float) -> None:
    if not 0.0 <= opacity <= 1.0:  # checked before any node is added
        raise InputError(f"Opacity {opacity} must lie in [0, 1].")
    mrml.display.colormap_rgba(threshold)  # validates the threshold, adds nothing


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None)))
