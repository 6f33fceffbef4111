"""The main-job command end to end (the skeleton's smoke run) and CLI error handling."""
import subprocess
import sys

import nibabel as nib
import numpy as np
import vtk

from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.smoke import bundled_t1


def test_demo_writes_heatmap_scene_and_pngs(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "NeuroRelevanceLib", "demo", "--smoke",
                             "--output", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(out.resolve()) in result.stdout
    # Slicer's reader may flip a left-handed file's k axis (data and matrix together):
    # compare in the closest canonical (RAS+) orientation, where both must agree exactly
    heat = nib.as_closest_canonical(nib.load(out / "smoke.nii.gz"))
    t1 = nib.as_closest_canonical(nib.load(bundled_t1()))
    assert heat.shape == t1.shape and np.allclose(heat.affine, t1.affine, atol=1e-4)
    data = np.asanyarray(heat.dataobj)
    assert data.max() > 0 > data.min() and np.isclose(np.abs(data).max(), 1.0)
    scene_text = (out / "smoke.mrml").read_text()
    assert "smoke-data/T1.nrrd" in scene_text and "NeuroRelevance.method" in scene_text
    for view in ("Red", "Yellow", "Green"):
        reader = vtk.vtkPNGReader()
        reader.SetFileName(str(out / f"smoke_{view}.png"))
        reader.Update()
        assert reader.GetOutput().GetPointData().GetScalars().GetRange(0)[1] > 0


def test_demo_scene_reloads_in_a_fresh_scene(tmp_path):
    import slicer

    assert main(["demo", "--smoke", "--output", str(tmp_path)]) == 0
    from NeuroRelevanceLib import mrml

    scene = slicer.vtkMRMLScene()
    mrml.register_node_classes(scene)  # as Slicer's Colors module does (the heatmap's colour legend)
    scene.SetURL(str(tmp_path / "smoke.mrml"))
    assert scene.Import()
    heat = scene.GetFirstNodeByName("T1 · smoke LoG")
    assert heat is not None and heat.GetNodeReference("NeuroRelevance.source").GetName() == "T1"


def test_web_command_binds_loopback_by_default_and_refuses_missing_data_folders(tmp_path, capsys):
    from NeuroRelevanceLib.cli import build_parser

    args = build_parser().parse_args(["web"])
    assert (args.host, args.port, args.data) == ("127.0.0.1", 8080, None)
    # a data folder that does not exist is refused before anything starts (no server, exit 2)
    assert main(["web", "--data", str(tmp_path / "missing"), "--no-demo"]) == 2
    assert "--data" in capsys.readouterr().err
