"""``neurorelevance demo --smoke``: a quick check of the MRML bridge alone, no network, no model.

It loads the small T1 that ships inside nibabel, makes a signed heatmap-like map from it
(a Laplacian of Gaussian with SimpleITK: positive and negative blobs with a real brain's
geometry), shows it as an overlay and writes NIfTI, .mrml and PNG files. It checks that volumes, display,
storage and rendering work where the network is not needed; ``neurorelevance demo`` without ``--smoke``
(``demo_run.py``) explains a synthetic brain with a trained demo network.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .geometry import array_to_sitk
from .logic import HeatmapOutput, RelevanceLogic


def bundled_t1() -> Path:
    """Path of the small T1 volume inside the installed nibabel package."""
    import nibabel

    path = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall nibabel (pip install nibabel).")
    return path


def heatmap_like(array_kji: np.ndarray, grid, sigma_mm: float = 4.0) -> np.ndarray:
    """A signed, smooth, heatmap-like map: minus the Laplacian of Gaussian, scaled to max |1|."""
    import SimpleITK as sitk

    image = sitk.Cast(array_to_sitk(array_kji.astype(np.float32), grid), sitk.sitkFloat32)
    log = sitk.GetArrayFromImage(sitk.LaplacianRecursiveGaussian(image, sigma=sigma_mm))
    log = -log * (array_kji > np.percentile(array_kji, 60))
    peak = float(np.max(np.abs(log)))
    return (log / peak if peak > 0 else log).astype(np.float32)


def run_smoke(output_dir: str | Path = "demo-output", log=print) -> HeatmapOutput:
    """Build a scene, add a heatmap through the bridge, write the files; return what was made."""
    import slicer

    from . import mrml

    started = time.perf_counter()
    scene = slicer.vtkMRMLScene()
    views = mrml.SliceViews(scene, size=(256, 256))
    logic = RelevanceLogic(scene, views)
    log(f"[1/3] Loading the bundled T1 ({bundled_t1().name} from nibabel)")
    source = mrml.read_volume(scene, bundled_t1(), "T1")
    array, grid = mrml.volume_to_array(source)
    log("[2/3] Making a heatmap-like map and showing it over the T1")
    output = logic.add_heatmap(source, heatmap_like(array, grid), "smoke LoG",
                               parameters={"sigma_mm": 4.0}, opacity=0.6, threshold=0.1)
    log(f"[3/3] Writing files to {Path(output_dir).resolve()}")
    logic.export(output, output_dir, stem="smoke")
    output.files["scene"] = mrml.save_scene(scene, Path(output_dir) / "smoke.mrml")  # the demo's own scene
    for kind, path in output.files.items():
        log(f"  {kind:10s} {path}")
    log(f"Done in {time.perf_counter() - started:.1f} s.")
    return output
