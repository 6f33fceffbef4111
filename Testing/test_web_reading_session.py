"""Reading a result in the web viewer, below the browser (issue 15): downloads, table, navigation.

A real scene, the bundled demo network and a real run on the demo subject at 4 mm, driven through
:class:`web.session.WebSession`. Oracles: nibabel's reading of the downloaded files, the region
table's own CSV writer, the bundled atlas' label map read in its own space, and the source files.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import jobs
from NeuroRelevanceLib.geometry import kji_to_nibabel
from NeuroRelevanceLib.web.files import FileGate
from NeuroRelevanceLib.web.session import WebSession

slicer = pytest.importorskip("slicer")

from web_session_helpers import ATLAS, panel_values  # noqa: E402

WEB = Path(__file__).resolve().parents[1] / "NeuroRelevance" / "NeuroRelevanceLib" / "web"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("web-reading")
    scene = slicer.vtkMRMLScene()
    web = WebSession(scene, FileGate([root]))
    web.load_demo(spacing=4.0)
    web.select_model("bundled:ad_cnn")
    run = web.finish(jobs.compute(web.prepare(panel_values())))
    yield SimpleNamespace(session=web, run=run, scene=scene, tmp=tmp_path_factory.mktemp("out"))
    web.close()


def _read(download, folder: Path):
    path = folder / download.name
    path.write_bytes(download.content)
    return nib.load(path)


def test_heatmap_download_is_the_raw_map_even_when_a_filter_is_shown(demo):
    web, run = demo.session, demo.run
    raw = kji_to_nibabel(np.asarray(run.job.raw[0], dtype=np.float32))
    try:
        assert web.refilter(panel_values(filter_type="pass", filter_low=0.3, filter_high=1.0))
        heatmap = web.download_heatmap()
        assert heatmap.name.endswith("-relevance.nii.gz")
        image = _read(heatmap, demo.tmp)
        assert np.array_equal(np.asarray(image.dataobj), raw), "the download is the filtered map"
        assert b"raw" in image.header["descrip"].tobytes()
        shown = web.download_displayed()
        assert shown.name.endswith("-relevance-displayed.nii.gz")
        displayed = np.asarray(_read(shown, demo.tmp).dataobj)
        assert 0 < np.count_nonzero(displayed) < np.count_nonzero(raw)
        kept = displayed != 0
        assert np.allclose(displayed[kept], raw[kept])
        assert b"displayed" in _read(shown, demo.tmp).header["descrip"].tobytes()
    finally:
        web.refilter(panel_values())
    assert np.array_equal(np.asarray(_read(web.download_displayed(), demo.tmp).dataobj), raw)


def test_table_download_carries_the_runs_record(demo):
    from NeuroRelevanceLib.regions import csv_text, read_csv

    table = demo.session.download_table()
    text = table.content.decode()
    assert text == csv_text(demo.run.table)
    assert text.startswith("#") and "ad_cnn" in text.split("\n#", 3)[1] + text
    path = demo.tmp / table.name
    path.write_text(text)
    reread = read_csv(path)
    assert list(reread["name"]) == list(demo.run.table["name"])


def test_unranked_regions_are_listed_as_unranked(demo):
    web, run = demo.session, demo.run
    web.logic.add_region_table(run, ATLAS, min_overlap=0.2, min_region_voxels=300)
    table = run.table
    assert (~table["ranked"]).sum() > 3 and table["ranked"].sum() > 3
    rows = web.table_rows()
    ranked = [r for r in rows if r["ranked"]]
    unranked = [r for r in rows if not r["ranked"]]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert all(r["rank"] == "unranked" for r in unranked)
    assert rows.index(unranked[0]) == len(ranked), "unranked rows come after the ranked ones"
    assert {r["name"] for r in unranked} == set(table.loc[~table["ranked"], "name"])
    chart = web.chart_rows()
    assert {r["name"] for r in chart} <= {r["name"] for r in ranked}, "the chart ranks an unranked region"
    web.logic.add_region_table(run, ATLAS, min_overlap=0.2)


def test_a_region_centre_lies_inside_its_region(demo):
    from NeuroRelevanceLib.regions import load_bundled_atlas

    atlas = load_bundled_atlas(ATLAS)
    to_atlas = np.linalg.inv(atlas.grid.ijk_to_ras)
    labels = atlas.label_map().T   # (i, j, k) view: indexed by the ijk computed above
    for row in demo.session.table_rows()[:25]:
        ras = demo.session.region_centre(row["label"])
        ijk = np.rint(to_atlas @ np.r_[ras, 1.0])[:3].astype(int)
        assert int(labels[tuple(ijk)]) == row["label"], (row["name"], ras)
    with pytest.raises(ValueError, match="not in the region table"):
        demo.session.region_centre(99999)


def test_probe_reads_the_scan_and_the_raw_map_at_a_ras_point(demo):
    web = demo.session
    heat = _read(web.download_heatmap(), demo.tmp)
    raw = np.asarray(heat.dataobj)
    scan = np.asarray(_read(_scan_download(web, demo.tmp), demo.tmp).dataobj)
    rng = np.random.default_rng(3)
    corners = heat.affine @ np.array([[0, 0, 0, 1], [*np.array(raw.shape) - 1, 1]]).T
    low, high = corners[:3].min(axis=1), corners[:3].max(axis=1)
    inside = 0
    for ras in rng.uniform(low - 10, high + 10, size=(40, 3)):
        probe = web.probe(ras)
        ijk = np.rint(np.linalg.inv(heat.affine) @ np.r_[ras, 1.0])[:3].astype(int)
        assert probe["ijk"] == [int(v) for v in ijk]
        if np.all((ijk >= 0) & (ijk < raw.shape)):
            inside += 1
            assert probe["relevance"] == pytest.approx(float(raw[tuple(ijk)]), rel=1e-6, abs=1e-15)
            assert probe["scan"] == pytest.approx(float(scan[tuple(ijk)]), rel=1e-5)
        else:
            assert probe["relevance"] is None and probe["scan"] is None
    assert inside > 10


def _scan_download(web, folder: Path):
    """The scan as a NIfTI written by the library (an independent reader follows: nibabel)."""
    from NeuroRelevanceLib import mrml
    from NeuroRelevanceLib.web.session import Download

    path = folder / "scan.nii.gz"
    mrml.write_volume(web.scan, path)
    return Download(path.name, "application/gzip", path.read_bytes())


def test_a_pinned_run_stays_beside_new_runs_until_unpinned(demo):
    web = demo.session
    first = web.run
    web.pin()
    second = web.finish(jobs.compute(web.prepare(panel_values(target="control"))))
    try:
        assert second is not first and web.pinned is first
        assert first.node.GetScene() is demo.scene and second.node.GetScene() is demo.scene
        assert "target control" in web.caption(second)[0] and "target AD" in web.caption(first)[0]
    finally:
        web.unpin()
    assert first.node.GetScene() is None, "an unpinned earlier run stays in the scene"
    assert web.pinned is None and web.run is second
    demo.run = web.finish(jobs.compute(web.prepare(panel_values())))


def test_filter_range_is_named_apart_from_the_rule_alpha():
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.web.values import page_values

    root = WEB.parents[2]
    for path in (WEB / "ui.py", WEB / "values.py", root / "docs" / "web.md"):
        assert "α range" not in path.read_text(), path
    from NeuroRelevanceLib.vocabulary import OPTIONS

    assert OPTIONS["filter_range"].label == "Filter range" and "αβ" in OPTIONS["filter_range"].help
    assert 'label=OPTIONS["filter_range"].label' in (WEB / "ui.py").read_text()
    state = SimpleNamespace(**{**{k: v for k, v in panel_values().items()
                                  if k not in ("filter_low", "filter_high")},
                               "filter_range": [0.0, 2.0], "target": "predicted", "atlas": "none"})
    with pytest.raises(InputError, match="Filter range end"):
        page_values(state, atlases=["none"], targets=["predicted"])


def test_the_page_shows_the_cards_intended_use_or_a_warning(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from NeuroRelevanceLib.web.app import RelevanceWebApp
    from reading_helpers import tiny_card

    card = json.loads(tiny_card(tmp_path).read_text())
    for key in ("intended_use", "limitations"):
        card.pop(key)
    (tmp_path / "bare.json").write_text(json.dumps(card))
    app = RelevanceWebApp(server="neurorelevance-test-use", roots=[tmp_path], demo=False, autorun=False)
    try:
        assert "Intended use: Research and teaching demo" in app.state.model_use
        assert "not for clinical use" in app.state.model_use
        from NeuroRelevanceLib.models import read_card
        from NeuroRelevanceLib.panel import recommendation_details, recommendation_text
        from NeuroRelevanceLib.pretrained import model_card_path
        from NeuroRelevanceLib.web.app import DEMO_MODEL

        demo = read_card(model_card_path(DEMO_MODEL.split(":", 1)[1]))   # the plain line, and the details as its title
        assert recommendation_text(demo) in app.state.model_info and "a random map" in app.state.model_info
        assert app.state.model_details == recommendation_details(demo) and "cohort seed" in app.state.model_details
        app.state.model_path = "bare.json"
        app.ctrl.load_model_path()
        assert app.state.error == ""
        assert app.state.model_use.startswith("⚠")
        assert app.state.model_details == ""          # a card with no reason and no evidence: nothing to detail
    finally:
        app.session.close()
