"""Issue 17's audit of model loading: every crafted file of ``Testing/security_payloads.py``
against every entry point, with the outcome of each case.

Outcomes: ``refused`` (one clear InputError/ValueError, nothing ran), ``RAN`` (the payload's marker
file appeared), ``crash`` (another exception type: a traceback for the user), ``accepted`` (no
error and nothing ran: silently loaded). Run it on any checkout to compare:

    PYTHONPATH=NeuroRelevance .venv/bin/python benchmarks/bench_security.py
"""
from __future__ import annotations

import collections
import contextlib
import io
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))


def _entry_points(folder: Path):
    import nibabel as nib
    import numpy as np

    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.engine import explain
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.models import load_model
    from security_payloads import card_for, example

    cohort = folder / "cohort"
    cohort.mkdir()
    rows = ["path,target"]
    for n in range(4):
        nib.save(nib.Nifti1Image(np.random.default_rng(n).normal(size=(8, 8, 8)).astype(np.float32),
                                 np.eye(4)), str(cohort / f"s{n}.nii.gz"))
        rows.append(f"s{n}.nii.gz,{n}")
    (cohort / "targets.csv").write_text("\n".join(rows) + "\n")

    def cli(*args):
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(args))
        if code == 2:
            raise InputError("exit code 2")  # the CLI printed one error line

    def card(payload):
        home = folder / f"card_{payload.name}"
        home.mkdir(exist_ok=True)
        shutil.copy(payload.path, home / payload.path.name)
        return card_for(payload, home)

    def logic(path):
        import slicer

        from conftest import oblique_grid
        from NeuroRelevanceLib import mrml
        from NeuroRelevanceLib.logic import RelevanceLogic

        scene = slicer.vtkMRMLScene()
        grid = oblique_grid(shape_kji=(8, 8, 8))
        volume = mrml.array_to_volume(scene, np.ones(grid.shape_kji, np.float32), grid, "scan")
        RelevanceLogic(scene).prepare([volume], str(path))

    def web(payload):
        import slicer

        from NeuroRelevanceLib.web.files import FileGate
        from NeuroRelevanceLib.web.session import WebSession

        root = folder / f"web_{payload.name}"
        root.mkdir(exist_ok=True)
        shutil.copy(payload.path, root / payload.path.name)
        session = WebSession(slicer.vtkMRMLScene(), FileGate([root], max_upload=1 << 20))
        try:
            session.select_model(payload.path.name)
        finally:
            session.close()

    return {
        "load_model": lambda p: load_model(p.path, device="cpu"),
        "card weights": lambda p: load_model(card(p), device="cpu"),
        "explain(path)": lambda p: explain(str(p.path), example(), preset="epsilon-plus"),
        "cli compare": lambda p: cli("compare", str(cohort / "s0.nii.gz"), "--model", str(p.path)),
        "cli cohort": lambda p: cli("cohort", str(cohort), "--model", str(p.path), "--out",
                                    str(folder / "out"), "--quiet", "--rank", "2", "2", "--no-grid"),
        "slicer logic": lambda p: logic(p.path),
        "web selector": web,
    }


def main() -> None:
    import torch

    from NeuroRelevanceLib.errors import InputError
    from security_payloads import build_payloads

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        payloads = build_payloads(folder / "payloads")
        entries = _entry_points(folder)
        table: dict[str, collections.Counter] = {name: collections.Counter() for name in entries}
        silent: list[str] = []
        for entry, call in entries.items():
            for payload in payloads.values():
                payload.reset()
                try:
                    call(payload)
                    outcome = "accepted"
                except (InputError, ValueError):
                    outcome = "refused"
                except Exception:  # noqa: BLE001 - a traceback for the user
                    outcome = "crash"
                if payload.fired():
                    outcome = "RAN"
                if outcome in ("RAN", "accepted"):
                    silent.append(f"{entry}: {payload.name} {outcome}")
                table[entry][outcome] += 1
                payload.reset()
    print(f"{'entry point':16s} {'cases':>5s} {'refused':>8s} {'RAN':>5s} {'crash':>6s} {'accepted':>9s}")
    for entry, counts in table.items():
        print(f"{entry:16s} {sum(counts.values()):5d} {counts['refused']:8d} {counts['RAN']:5d} "
              f"{counts['crash']:6d} {counts['accepted']:9d}")
    print("\n".join(silent) if silent else "nothing ran, nothing was silently accepted")


if __name__ == "__main__":
    main()
