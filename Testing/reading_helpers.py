"""Small real inputs for the 'reading the result' tests: a tiny model card, a scan, an asymmetric map."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.geometry import Grid

#: a 2 mm scan whose voxel (0, 0, 0) sits at RAS (-24, -30, -20): x > 0 is the patient's right
SCAN_GRID = Grid.from_parts((20, 30, 24), (2.0, 2.0, 2.0), (-24.0, -30.0, -20.0))


def tiny_card(folder: Path, preset: str = "alpha1-beta0", **extra) -> Path:
    """A one-channel two-class DeepTaylorCNN with its card (intended use given unless overridden)."""
    from NeuroRelevanceLib.models import save_weights
    from NeuroRelevanceLib.nets import build, spec

    net = build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=2, channels=(4, 8))
    save_weights(net, folder / "tiny.safetensors")
    card = {"name": "tiny", "architecture": spec(net), "weights": "tiny.safetensors",
            "input": {"channels": ["T1"], "shape": [12, 16, 16], "spacing": [4, 4, 4],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]},
            "recommended_preset": preset,
            "intended_use": "Unit tests of NeuroRelevance on synthetic data.",
            "limitations": "Random weights; not for clinical use.", **extra}
    path = folder / "tiny.json"
    path.write_text(json.dumps(card))
    return path


def scan_volume(scene, name: str = "scan"):
    """A smooth synthetic 'brain' on SCAN_GRID (brighter in the middle)."""
    k, j, i = np.mgrid[:20, :30, :24].astype(np.float32)
    r = np.sqrt(((i - 11.5) / 10) ** 2 + ((j - 14.5) / 13) ** 2 + ((k - 9.5) / 8) ** 2)
    values = np.clip(1.2 - r, 0, None) * 100 + 5 * np.sin(i / 2.0) * np.cos(j / 3.0)
    return mrml.array_to_volume(scene, values.astype(np.float32), SCAN_GRID, name)


def right_hemisphere_map(grid: Grid = SCAN_GRID) -> np.ndarray:
    """Positive relevance only where RAS x > 4 mm (the patient's right), a small negative blob left."""
    k, j, i = np.indices(grid.shape_kji)
    ras = grid.ijk_to_ras @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    x, y, z = (ras[a].reshape(grid.shape_kji) for a in range(3))
    values = np.where((x > 4) & (np.abs(y) < 20) & (np.abs(z) < 14), 1.0 + x / 20.0, 0.0)
    values -= 0.6 * ((np.abs(x + 14) < 4) & (np.abs(y - 10) < 4) & (np.abs(z) < 4))
    return values.astype(np.float32)


def render_slicer_view(size: int = 300, orientation: str = "Axial"):
    """A real MRML slice view (Slicer's displayable managers, via trame-slicer) showing the scan with
    the right-hemisphere heatmap and its colour legend, rendered offscreen; returns a vtkImageData."""
    import vtk
    from trame_slicer.core import SlicerApp
    from trame_slicer.views import DirectViewFactory, ViewLayoutDefinition

    from NeuroRelevanceLib.mrml.display import show_heatmap
    from NeuroRelevanceLib.mrml.outputs import create_heatmap_volume

    app = SlicerApp()
    app.view_manager.register_factory(DirectViewFactory(do_render_offscreen=True))
    view = app.view_manager.create_view(ViewLayoutDefinition.slice_view(orientation, label="Red"))
    scan = scan_volume(app.scene)
    heat = create_heatmap_volume(app.scene, scan, right_hemisphere_map(), "LRP test", target="AD")
    show_heatmap(app.scene, heat, opacity=0.8)
    # the colour legend's displayable manager finds its view's composite node on a scene update
    app.scene.StartState(app.scene.BatchProcessState)
    app.scene.EndState(app.scene.BatchProcessState)
    import slicer

    slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(heat).Modified()
    window = view.render_window()
    window.SetSize(size, size)
    view.fit_view_to_content()
    view.render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.ReadFrontBufferOff()
    grab.Update()
    image = vtk.vtkImageData()
    image.DeepCopy(grab.GetOutput())
    return image


def halves_atlas(folder: Path, name: str = "halves", shift_mm: float = 0.0) -> str:
    """An 8 mm two-region label map (left/right halves) over the run tests' scan; ``shift_mm`` moves it away."""
    import nibabel as nib

    labels = np.zeros((8, 8, 8), np.int16)
    labels[:, :, :4], labels[:, :, 4:] = 1, 2
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = (-30 + shift_mm, -30 + shift_mm, -30 + shift_mm)
    nib.save(nib.Nifti1Image(labels, affine), folder / f"{name}.nii.gz")
    (folder / f"{name}.csv").write_text("id,name\n1,Left half\n2,Right half\n")
    return str(folder / f"{name}.nii.gz")


def run_scan(scene, name: str = "T1"):
    """The run tests' scan: 20×22×24 voxels of 2×2.5×2.2 mm with a smooth pattern and noise."""
    grid = Grid.from_parts((20, 22, 24), (2.0, 2.5, 2.2), (-25, -20, -18))
    k, j, i = np.mgrid[:20, :22, :24]
    values = 100 + 50 * np.sin(i / 3.0) * np.cos(j / 4.0) + np.random.default_rng(0).normal(0, 5, grid.shape_kji)
    return mrml.array_to_volume(scene, values.astype(np.float32), grid, name)
