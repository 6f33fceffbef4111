"""Charts we write carry a caption: what was run, on what, and the model's intended use."""
import matplotlib.image as mpimg
import numpy as np

CAPTION = ["Model tiny (weights sha256 abcdef123456…) · methods lrp, gradient · target AD",
           "Limits: Synthetic-data demo, not for clinical use."]


def _caption_rows(path, rows: int = 30) -> np.ndarray:
    pixels = mpimg.imread(path)[..., :3]
    return pixels[-rows:]


def test_perturbation_curves_png_has_the_caption_below_the_axes(tmp_path):
    from NeuroRelevanceLib.metrics import plot_curves

    fractions = np.linspace(0, 1, 5)
    plain = plot_curves({"lrp": np.linspace(1, 0, 5), "random": np.linspace(1, 0.8, 5)}, fractions,
                        tmp_path / "plain.png")
    path = plot_curves({"lrp": np.linspace(1, 0, 5), "random": np.linspace(1, 0.8, 5)}, fractions,
                       tmp_path / "curves.png", caption=CAPTION)
    assert mpimg.imread(path).shape[0] > mpimg.imread(plain).shape[0]  # room was added for the caption
    bottom = _caption_rows(path)
    orange = (bottom[..., 0] > 0.5) & (bottom[..., 2] < 0.2)  # the limits line in the warning colour
    assert orange.sum() > 20


def test_cohort_plots_take_a_caption(tmp_path):
    from NeuroRelevanceLib.cohort.plots import plot_loadings, plot_scree

    scree = {"mode1": [5.0, 2.0, 1.0], "mode2": [4.0, 1.0], "mode3": [3.0, 0.5]}
    path = plot_scree(scree, tmp_path / "scree.png", caption=CAPTION)
    assert ((_caption_rows(path)[..., 0] > 0.5) & (_caption_rows(path)[..., 2] < 0.2)).sum() > 20
    rng = np.random.default_rng(0)
    path = plot_loadings(rng.random((10, 2)), rng.random(10), tmp_path / "load.png", caption=CAPTION)
    assert ((_caption_rows(path)[..., 0] > 0.5) & (_caption_rows(path)[..., 2] < 0.2)).sum() > 20
