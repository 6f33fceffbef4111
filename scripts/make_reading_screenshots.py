"""Rewrite the README's reading screenshots in Resources/Screenshots/ from the demo (2 mm scan).

- ``overlay.png``: the demo's labelled three-slice montage (letters, positions, colour bar, caption)
- ``regions.png``: the demo's captioned region chart (scan-grid statistics)
- ``slicer-legend.png``: an axial MRML slice view drawn by Slicer's own displayable managers
  (through trame-slicer, offscreen) with the heatmap's colour legend display node

Run: ``.venv/bin/python scripts/make_reading_screenshots.py`` (needs OSMesa or EGL for the last one).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "NeuroRelevance"))
OUT = ROOT / "Resources" / "Screenshots"


def slicer_view_png(path: Path, size: int = 560) -> Path:
    """The demo subject's run in a real slice view with Slicer's colour legend."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    import numpy as np
    import slicer
    import vtk
    from trame_slicer.core import SlicerApp
    from trame_slicer.views import DirectViewFactory, ViewLayoutDefinition

    from NeuroRelevanceLib.demo_run import DEMO_MODEL, DEMO_SETTINGS, add_demo_subject
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained import model_card_path

    app = SlicerApp()
    app.view_manager.register_factory(DirectViewFactory(do_render_offscreen=True))
    view = app.view_manager.create_view(ViewLayoutDefinition.axial_view())
    subject = add_demo_subject(app.scene, spacing=2.0)
    run = RelevanceLogic(app.scene).run([subject.scan], load_model(model_card_path(DEMO_MODEL), device="cpu"),
                                        **DEMO_SETTINGS)
    app.scene.StartState(app.scene.BatchProcessState)  # the legend's manager finds its composite node
    app.scene.EndState(app.scene.BatchProcessState)
    slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(run.node).Modified()
    k, j, i = (float(np.mean(a)) for a in np.nonzero(subject.mask_kji == 1))   # the AD-like atrophy
    centre = subject.grid.ijk_to_ras @ np.array([i, j, k, 1.0])
    window = view.render_window()
    window.SetSize(size, size)
    view.fit_view_to_content()
    view._logic.SetSliceOffset(float(centre[2]))  # axial: the offset is S
    view.render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    return path


def main() -> int:
    import torch

    from NeuroRelevanceLib.demo_run import run_demo

    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        report = run_demo(folder, spacing=2.0, log=print)
        for name in ("overlay_png", "regions_png"):
            target = OUT / Path(report.files[name]).name
            shutil.copyfile(report.files[name], target)
            print(f"wrote {target}")
    print(f"wrote {slicer_view_png(OUT / 'slicer-legend.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
