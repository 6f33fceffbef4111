"""One browser session's work on its MRML scene, free of any web framework.

:class:`WebSession` loads the input (the bundled demo subject, a server file inside the allowed
folders, or an upload), picks the model, starts and finishes runs through
:class:`logic.RelevanceLogic` (the same prepare / compute / apply steps as the Slicer module),
re-filters from the cache, and builds the downloads. The trame app in :mod:`.app` only binds
this to widgets; the tests drive it directly as well as through a browser.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import mrml, panel
from ..errors import InputError
from ..logic import RUN_KEY, RelevanceLogic, RunResult
from . import reading
from .files import MODEL_SUFFIXES, FileGate, Upload, UploadReceiver
from .reading import TABLE_COLUMNS  # noqa: F401  (the table's columns, for the page)

if TYPE_CHECKING:
    from ..models import LoadedModel

BUNDLED = "bundled:"          # model choices "bundled:ad_cnn", ... name the shipped demo cards
DEMO_DIAGNOSES = ["AD", "CN"]
DEMO_AGES = (40.0, 95.0)      # the synthetic cohort's age range


@dataclass
class Download:
    """A file for the browser: suggested name, MIME type and content."""

    name: str
    mime: str
    content: bytes


#: what the web viewer says instead of the library's "mark it trusted" advice, which it cannot follow
WEB_TRUST = ("The web viewer never loads untrusted pickled files and cannot mark a file trusted: if you trust "
             "its origin, load it in the Slicer module or the Python API, where you can mark it trusted; or export "
             "the model without pickles (torch.export.save or torch.jit.save) with a model card.")


class WebSession:
    """Inputs, model, runs and downloads of one viewer on one scene."""

    def __init__(self, scene, gate: FileGate) -> None:
        self.scene = scene
        self.gate = gate
        self.logic = RelevanceLogic(scene)
        self.scan: Any = None         # the input volume node (vtkMRMLScalarVolumeNode)
        self.extra_nodes: list = []   # nodes that belong to the input (the demo's atrophy mask)
        self.model: LoadedModel | None = None
        self.model_choice = ""
        self.run: RunResult | None = None
        self.pinned: RunResult | None = None  # an earlier run kept beside the current one
        self.runs_started = 0         # how many times the network ran (a refilter is not a run)
        self._uploads = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="neurorelevance-web-")

    # ---- inputs -------------------------------------------------------------------------
    def load_demo(self, diagnosis: str = "AD", age: float = 78.0, spacing: float = 2.0):
        """Replace the input by the demo's generated subject, which no network saw (scan + ground-truth mask)."""
        from ..demo_run import add_demo_subject

        if not isinstance(diagnosis, str) or diagnosis not in DEMO_DIAGNOSES:
            raise InputError(f"Demo diagnosis {diagnosis!r}: choose AD or CN.")
        try:
            years = float(age)
        except (TypeError, ValueError):
            years = float("nan")
        if not DEMO_AGES[0] <= years <= DEMO_AGES[1]:  # also refuses NaN
            raise InputError(f"Demo age {age}: choose 40 to 95 years.")
        self._clear_input()
        subject = add_demo_subject(self.scene, age=years, diagnosis=diagnosis, spacing=spacing)
        self.scan, self.extra_nodes = subject.scan, [subject.mask]
        return self.scan

    def load_server_file(self, typed: str):
        """Replace the input by a volume file on the server (inside the allowed folders)."""
        path = self.gate.resolve(typed, mrml.storage.VOLUME_SUFFIXES, "volume file")
        detached = self.gate.check_data_files(path)
        return self._load_path(path, detached=bool(detached))

    def load_upload(self, item: dict):
        """Replace the input by an uploaded volume (``{"name", "content"}``); see :meth:`receive_upload`."""
        upload = Upload.from_client(item)
        receiver = self.receive_upload(upload.name)
        receiver.write(upload.content)
        return self.load_received(receiver)

    def receive_upload(self, name: str) -> UploadReceiver:
        """Start an upload into a fresh private folder (the name is checked now, the size as it comes)."""
        self._uploads += 1
        return self.gate.receive_upload(name, Path(self._tmp.name) / f"upload-{self._uploads}")

    def load_received(self, receiver: UploadReceiver):
        """Replace the input by a received upload; a bad file leaves the current input as it is.

        Only the current upload's file is kept on disk: a failed upload's and the previous
        input's are deleted.
        """
        import shutil

        try:
            path = receiver.finish()
            node = self._load_path(path, name=path.name.split(".")[0])
        except Exception:
            receiver.abort()
            shutil.rmtree(receiver.folder, ignore_errors=True)
            raise
        for old in Path(self._tmp.name).glob("upload-*"):
            if old != receiver.folder:
                shutil.rmtree(old, ignore_errors=True)
        return node

    def _load_path(self, path: Path, name: str | None = None, detached: bool = False):
        from .files import safe_name

        if safe_name(path.name) != path.name and path.name.lower() == safe_name(path.name).lower():
            if detached:  # a link elsewhere would change where relative data paths lead
                raise InputError(f"{path.name}: rename it with a lower-case suffix "
                                 f"({safe_name(path.name)}); its voxels live in another file.")
            # ITK's readers know '.mha', not '.MHA': read through a link with the lower-case name
            self._uploads += 1
            link = Path(self._tmp.name) / f"link-{self._uploads}" / safe_name(path.name)
            link.parent.mkdir(parents=True)
            link.symlink_to(path)
            name, path = name or path.name.split(".")[0], link
        node = mrml.read_volume(self.scene, path, name)  # raises before touching the scene
        try:
            values, grid = mrml.volume_to_array(node)
            if values.ndim != 3 or min(values.shape) < 8:
                raise InputError(f"{path.name}: a 3D scan is needed (at least 8 voxels per axis); "
                                 f"this one has shape {values.shape}.")
        except Exception:
            self._remove(node)
            raise
        self._clear_input(keep=node)
        self.scan, self.extra_nodes = node, []
        return node

    def _clear_input(self, keep=None) -> None:
        """Remove the previous input and every run made on it (never ``keep``)."""
        for key in {node.GetAttribute(RUN_KEY) for node in self.logic.run_nodes()}:
            self.logic.remove_run(key)
        for node in [self.scan, *self.extra_nodes]:
            if node is not None and node is not keep:
                self._remove(node)
        self.scan, self.extra_nodes, self.run, self.pinned = None, [], None, None

    def _remove(self, node) -> None:
        mrml.outputs.remove_with_companions(self.scene, node)

    # ---- model --------------------------------------------------------------------------
    @staticmethod
    def bundled_models() -> list[dict]:
        """Select items for the shipped one-channel demo networks."""
        from ..models import read_card
        from ..pretrained import available_models, model_card_path

        items = []
        for name in available_models():
            card = read_card(model_card_path(name))
            if len(card.input.channels) == 1:
                items.append({"title": f"{name} (bundled)", "value": BUNDLED + name})
        return items

    def select_model(self, choice: str):
        """Load a bundled card (``"bundled:<name>"``) or a model file typed by the user."""
        from ..models import load_model, read_card
        from ..pretrained import model_card_path

        if not isinstance(choice, str):
            raise InputError("Type the path of a model card (.json) or TorchScript file on the server.")
        choice = choice.strip()
        if choice.startswith(BUNDLED):
            path = model_card_path(choice[len(BUNDLED):])
        else:
            path = self.gate.resolve(choice, MODEL_SUFFIXES, "model file")
            if path.suffix.lower() == ".json":
                self.gate.check_model(read_card(path))
        from ..models.model_files import UntrustedFileError

        try:
            loaded = load_model(path, trusted=False, device="auto")  # the web never unpickles
        except UntrustedFileError as exc:  # the library's "mark it trusted" cannot be done here
            raise exc.advised(WEB_TRUST) from exc
        if loaded.card is None:
            raise InputError(f"{path.name} has no model card; the viewer needs one (input grid, "
                             "normalisation, classes): see docs/pretrained.md.")
        if len(loaded.card.input.channels) != 1:
            raise InputError(f"{loaded.card.name} takes {len(loaded.card.input.channels)} channels "
                             f"({', '.join(loaded.card.input.channels)}); the web viewer explains "
                             "one-channel models. Use the Slicer module or the Python API.")
        self.model, self.model_choice = loaded, choice
        return loaded

    def targets(self) -> list[str]:
        card = self.model.card if self.model is not None else None
        classes = list(card.output.classes) if card is not None else []
        return [panel.PREDICTED, *classes]

    # ---- runs ---------------------------------------------------------------------------
    def prepare(self, values: dict):
        """Check everything and copy the scan: the returned job is ready for ``jobs.compute``."""
        if self.scan is None:
            raise InputError("Load a scan first (the demo subject, a server file or an upload).")
        if self.model is None:
            raise InputError("Choose a model first.")
        job = self.logic.prepare([self.scan], self.model, **panel.run_settings(**values))
        self.runs_started += 1
        return job

    def finish(self, job) -> RunResult:
        """Add a computed job's overlay and table to the scene, then remove the previous run.

        The previous run goes only once the new one is in place (a refused run leaves it shown),
        and never while it is pinned for a side-by-side.
        """
        previous = self.run
        run = self.logic.apply(job)
        if self.pinned is not None and self.pinned.job.key == job.key:
            self.pinned = run  # the same settings again: apply replaced the pinned nodes
        if previous is not None and previous.job.key != job.key and previous is not self.pinned:
            self.logic.remove_run(previous.job.key)
        self.run = run
        return self.run

    def pin(self) -> RunResult:
        """Keep the current run beside the next ones (a side-by-side); replaces an earlier pin."""
        run = self._need_run()
        if self.pinned is not None and self.pinned is not run:
            self.logic.remove_run(self.pinned.job.key)
        self.pinned = run
        return run

    def unpin(self) -> None:
        """Drop the pinned run (its nodes leave the scene unless it is the current run)."""
        pinned, self.pinned = self.pinned, None
        if pinned is not None and pinned is not self.run and pinned.node.GetScene() is not None:
            self.logic.remove_run(pinned.job.key)

    def refilter(self, values: dict) -> bool:
        """Apply filter / filter range / threshold / opacity from the cache; False without a run."""
        if self.run is None or self.run.node.GetScene() is None:
            return False
        self.logic.refilter(self.run, panel.display_filter(self.run, values["filter_type"]),
                            (float(values["filter_low"]), float(values["filter_high"])),
                            opacity=float(values["opacity"]), threshold=float(values["threshold"]),
                            positive_only=bool(values["positive_only"]))
        return True

    def summary(self) -> str:
        return panel.result_summary(self.run) if self.run is not None else ""

    def results_text(self, values: dict | None = None, event: str = "", error: Any = None) -> str:
        """The line beside Run: the shown run (marked out of date when ``values`` no longer match
        it) and what happened to the last Run that did not finish (``event``)."""
        settings = None
        if values is not None and self.run is not None:
            settings = panel.run_settings(**values)
        card = self.model.card.path if self.model is not None and self.model.card is not None else None
        return panel.results_text(self.run, settings, model=card,
                                  volumes=[self.scan] if self.scan is not None else None,
                                  event=event, error=error)

    def caption(self, run: RunResult | None = None) -> list[str]:
        """Caption lines of the views showing ``run`` (default: the current run)."""
        from ..mrml.legend import caption_for

        run = run or self.run
        return caption_for(run.node) if run is not None else []

    def table_rows(self, limit: int = 200) -> list[dict[str, Any]]:
        """The region table as plain rows (unranked regions marked) for a data table."""
        return reading.table_rows(None if self.run is None else self.run.table, limit)

    def chart_rows(self, k: int = 12) -> list[dict[str, Any]]:
        """Bars of the top ranked regions by relevance density."""
        return reading.chart_rows(None if self.run is None else self.run.table, k=k)

    def chart_caption(self) -> str:
        return reading.chart_caption(None if self.run is None else self.run.table)

    def region_centre(self, label: int) -> list[float]:
        """RAS point inside region ``label`` of the current run's table (near its centre)."""
        return reading.region_centre(self._need_run(), label)

    def probe(self, ras) -> dict[str, Any]:
        """Scan value, raw and shown relevance and region at a RAS point."""
        run = self.run if self.run is not None and self.run.node.GetScene() is not None else None
        return reading.probe(self.scan, run, ras)

    # ---- downloads ----------------------------------------------------------------------
    def file_names(self) -> dict[str, str]:
        """Download names of the heatmap (raw, and as displayed), the table and the scene."""
        from .files import safe_name

        stem = safe_name(self.scan.GetName() if self.scan is not None else "scene").split(".")[0]
        return {"heatmap": f"{stem}-relevance.nii.gz", "displayed": f"{stem}-relevance-displayed.nii.gz",
                "table": f"{stem}-regions.csv", "scene": f"{stem}-scene.mrb"}

    def download_heatmap(self) -> Download:
        """The raw relevance (whatever filter is shown), its record in the NIfTI description."""
        return self._heatmap(displayed=False)

    def download_displayed(self) -> Download:
        """The map as displayed (after the filter), named ``...-displayed.nii.gz``."""
        return self._heatmap(displayed=True)

    def _heatmap(self, displayed: bool) -> Download:
        from ..heatmap_files import export_heatmap

        run = self._need_run()
        folder = Path(tempfile.mkdtemp(dir=self._tmp.name))
        stem = self.file_names()["heatmap"][: -len(".nii.gz")]
        files = export_heatmap(run.node, run.outputs[0].raw, folder, stem, displayed)
        path = files["heatmap_displayed" if displayed else "heatmap"]
        return Download(path.name, "application/gzip", path.read_bytes())

    def download_table(self) -> Download:
        """The region table as CSV; its ``#`` header carries the run's settings record."""
        from ..regions import csv_text

        run = self._need_run()
        if run.table is None:
            raise InputError("This run has no region table: choose an atlas and run again.")
        return Download(self.file_names()["table"], "text/csv", csv_text(run.table).encode())

    def download_scene(self) -> Download:
        self._need_run()
        path = Path(self._tmp.name) / self.file_names()["scene"]
        mrml.save_scene_bundle(self.scene, path)
        return Download(path.name, "application/zip", path.read_bytes())

    def _need_run(self) -> RunResult:
        if self.run is None or self.run.node.GetScene() is None:
            raise InputError("Run an explanation first; there is nothing to download yet.")
        return self.run

    def close(self) -> None:
        self._tmp.cleanup()
