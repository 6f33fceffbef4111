"""Static checks of the Slicer extension files: CMake lists, the .ui file and the module glue."""
import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "NeuroRelevance"
sys.path.insert(0, str(ROOT / "scripts"))
import update_module_cmake  # noqa: E402


def test_every_module_file_is_listed_in_cmake():
    text = (MODULE / "CMakeLists.txt").read_text()
    scripts, resources = update_module_cmake.module_files()
    listed_scripts = update_module_cmake.listed(text, "MODULE_PYTHON_SCRIPTS")
    listed_resources = update_module_cmake.listed(text, "MODULE_PYTHON_RESOURCES")
    missing = sorted(set(scripts) - set(listed_scripts))
    assert not missing, f"not in NeuroRelevance/CMakeLists.txt (run scripts/update_module_cmake.py): {missing}"
    stale = sorted(set(listed_scripts) - set(scripts))
    assert not stale, f"listed but absent: {stale}"
    assert sorted(listed_resources) == resources
    assert "slicerMacroBuildScriptedModule" in text and "WITH_GENERIC_TESTS" in text


def test_listing_check_would_catch_an_unlisted_file():
    text = (MODULE / "CMakeLists.txt").read_text()
    without = text.replace("  NeuroRelevanceLib/logic.py\n", "")
    assert "NeuroRelevanceLib/logic.py" in update_module_cmake.module_files()[0]
    assert "NeuroRelevanceLib/logic.py" not in update_module_cmake.listed(without, "MODULE_PYTHON_SCRIPTS")


def test_top_level_cmake_is_a_slicer_extension():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS",
                "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert re.search(rf'set\({key} "[^"]+"\)', text), key
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    for line in ("find_package(Slicer REQUIRED)", "add_subdirectory(NeuroRelevance)",
                 "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"):
        assert line in text


def _ui_widgets() -> dict[str, ET.Element]:
    tree = ET.parse(MODULE / "Resources" / "UI" / "NeuroRelevance.ui")
    return {w.get("name"): w for w in tree.iter("widget")}


def _module_ast() -> ast.Module:
    return ast.parse((MODULE / "NeuroRelevance.py").read_text())


def test_ui_has_every_widget_the_module_uses():
    used = {node.attr for node in ast.walk(_module_ast())
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui"}
    assert used, "the widget code references no self.ui.<name>?"
    missing = used - set(_ui_widgets())
    assert not missing, f"widgets referenced in NeuroRelevance.py but absent from the .ui: {missing}"


#: widget name suffix -> the class the Widget code expects it to be
EXPECTED_CLASS = {"Selector": "qMRMLNodeComboBox", "ComboBox": "QComboBox", "Slider": "ctkSliderWidget",
                  "CheckBox": "QCheckBox", "SpinBox": "QDoubleSpinBox", "LineEdit": "ctkPathLineEdit",
                  "RangeWidget": "ctkRangeWidget", "Label": "QLabel", "TableView": "qMRMLTableView",
                  "ProgressBar": "QProgressBar", "CollapsibleButton": "ctkCollapsibleButton"}
#: parameters bound by code instead of SlicerParameterName (the range widget has two values;
#: the output volume is set when a run finishes)
BOUND_BY_CODE = {"filterLow": "filterRangeWidget", "filterHigh": "filterRangeWidget", "outputVolume": None,
                 # combo boxes filled at run time (str fields need a fixed Choice to be bound)
                 "target": "targetComboBox", "atlasName": "atlasComboBox"}


def _expected_class(name: str) -> str | None:
    for suffix, cls in sorted(EXPECTED_CLASS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return cls
    return "QPushButton" if name.endswith("Button") else None


def test_ui_widgets_have_the_expected_classes():
    widgets = _ui_widgets()
    wrong = {name: w.get("class") for name, w in widgets.items()
             if _expected_class(name) and w.get("class") != _expected_class(name)}
    assert not wrong, wrong


def test_every_parameter_has_a_widget_and_every_binding_a_parameter():
    tree = _module_ast()
    params = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                  and n.name == "NeuroRelevanceParameterNode")
    fields = {s.target.id for s in params.body if isinstance(s, ast.AnnAssign)}
    bound = {}
    for name, widget in _ui_widgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.find("string").text] = name
    assert set(bound) <= fields, set(bound) - fields
    unbound = fields - set(bound) - set(BOUND_BY_CODE)
    assert not unbound, f"parameters with no widget: {unbound}"
    code = (MODULE / "NeuroRelevance.py").read_text()
    for field, widget in BOUND_BY_CODE.items():
        assert f"_parameterNode.{field}" in code, field
        if widget:
            assert widget in _ui_widgets() and f"self.ui.{widget}" in code


def test_module_has_the_four_scripted_classes_and_stays_thin():
    names = {n.name for n in _module_ast().body if isinstance(n, ast.ClassDef)}
    assert {"NeuroRelevance", "NeuroRelevanceWidget", "NeuroRelevanceLogic",
            "NeuroRelevanceTest"} <= names
    assert len((MODULE / "NeuroRelevance.py").read_text().splitlines()) < 400


def test_library_never_imports_qt_or_the_slicer_app():
    offenders = []
    for path in (MODULE / "NeuroRelevanceLib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif (isinstance(node, ast.Attribute) and node.attr in {"app", "util", "mrmlScene"}
                  and isinstance(node.value, ast.Name) and node.value.id == "slicer"):
                names = [f"slicer.{node.attr}"]
            bad = [n for n in names if n.split(".")[0] in {"qt", "ctk", "PythonQt"}
                   or n in {"slicer.app", "slicer.util", "slicer.mrmlScene"}]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in bad]
    assert not offenders, offenders


def test_icons_are_128_px_png():
    import vtk

    for path in (ROOT / "Resources" / "NeuroRelevance.png",
                 MODULE / "Resources" / "Icons" / "NeuroRelevance.png"):
        reader = vtk.vtkPNGReader()
        reader.SetFileName(str(path))
        reader.Update()
        assert reader.GetOutput().GetDimensions()[:2] == (128, 128)
