"""The Slicer panel names the filter range apart from the αβ rule's α, shows the model's intended use,
and says beside Apply what the shown result is, when it is out of date, and why a run failed."""
import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "NeuroRelevance" / "Resources" / "UI" / "NeuroRelevance.ui"
MODULE = ROOT / "NeuroRelevance" / "NeuroRelevance.py"


def _widgets() -> dict:
    return {w.get("name"): w for w in ET.parse(UI).iter("widget")}


def _text(widget, prop: str = "text") -> str:
    for element in widget.findall("property"):
        if element.get("name") == prop:
            return element.find("string").text or ""
    return ""


def test_filter_range_has_its_own_name_distinct_from_the_rule_alpha():
    widgets = _widgets()
    assert _text(widgets["filterLabel1"]) == "Filter range:"
    assert "not the αβ rule" in _text(widgets["filterRangeWidget"], "toolTip")
    assert _text(widgets["methodLabel3"]).startswith("αβ rule α")
    for path in (UI, ROOT / "README.md", ROOT / "docs" / "slicer.md", ROOT / "docs" / "regions.md"):
        text = path.read_text()
        assert "α range" not in text and "[α1, α2]" not in text, path


def test_panel_shows_intended_use_and_results_beside_apply():
    widgets = _widgets()
    assert widgets["intendedUseLabel"].get("class") == "QLabel"
    names = [w.get("name") for w in ET.parse(UI).iter("widget")]
    assert names.index("applyButton") < names.index("resultsLabel") < names.index("regionTableView")
    calls = {node.func.attr for node in ast.walk(ast.parse(MODULE.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "panel"}
    assert {"intended_use_text", "results_text", "result_summary"} <= calls
