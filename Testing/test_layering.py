"""The dependency direction of the explanation packages, read from the source's import statements.

- ``explanation/`` core (result, target, checks, filters, conservation, working copy, layer probe) is the shared
  bottom layer: it imports neither ``engine`` nor ``methods`` nor the dispatcher;
- ``engine/`` is LRP only: it imports nothing from ``methods`` and, of ``explanation``, only the core and the
  keyword check (``explanation.keywords``), never the dispatcher;
- ``methods/`` (the non-LRP methods) imports nothing from ``engine``, and neither the dispatcher nor the keyword
  check (the one exception: the lazy, documented old import path ``methods.explain`` in ``methods/__init__.py``);
- ``explanation.dispatch`` (``explain(method=...)``) is the one place that joins the engine and the methods.
Every import counts, top-level or inside a function (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "NeuroRelevance" / "NeuroRelevanceLib"
PACKAGE = "NeuroRelevanceLib"
#: the explanation modules above the shared core (they may import engine and methods)
TOP = {"explanation.dispatch", "explanation.keywords"}
#: what the engine may use of explanation (the core and the keyword check)
ENGINE_MAY_USE = {"explanation", "explanation.checks", "explanation.conservation", "explanation.filters",
                  "explanation.layers", "explanation.result", "explanation.target", "explanation.working_copy",
                  "explanation.keywords"}
#: the engine's public surface that ``methods`` may use (none today: methods share only explanation's core)
METHODS_MAY_USE_OF_ENGINE: set[str] = set()
#: (file, imported module) pairs allowed against the rules above, each with its reason
EXCEPTIONS = {("methods/__init__.py", "explanation.dispatch"): "old import path methods.explain (docs), lazy"}


def imports_of(path: Path) -> set[str]:
    """Every ``NeuroRelevanceLib`` module ``path`` imports, relative to the package (e.g. ``engine.api``)."""
    return imports_in(path.read_text(), path.relative_to(LIB).as_posix())


def imports_in(source: str, where: str) -> set[str]:
    """Every ``NeuroRelevanceLib`` module imported by ``source``, the file at ``where`` (relative to the package)."""
    package = where.split("/")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else list(package)
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == PACKAGE:
                module = node.module.partition(".")[2]
            else:
                continue
            found.add(module)
            for alias in node.names:  # ``from .. import methods`` / ``from ..explanation import dispatch``
                found.add(f"{module}.{alias.name}".lstrip("."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.add(alias.name.partition(".")[2])
    return {m for m in found if m}


def files_of(package: str) -> list[Path]:
    return sorted((LIB / package).rglob("*.py"))


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(package: str, allowed) -> list[str]:
    bad = []
    for path in files_of(package):
        where = path.relative_to(LIB).as_posix()
        for module in sorted(imports_of(path)):
            if not allowed(where, module) and (where, module) not in EXCEPTIONS:
                bad.append(f"{where} imports {module}")
    return bad


def _engine_ok(where: str, module: str) -> bool:
    if _under(module, "methods"):
        return False
    if _under(module, "explanation"):
        return module in ENGINE_MAY_USE or any(module.startswith(m + ".") for m in ENGINE_MAY_USE - {"explanation"})
    return True


def _methods_ok(where: str, module: str) -> bool:
    if _under(module, "engine"):
        return module in METHODS_MAY_USE_OF_ENGINE
    return not any(_under(module, top) for top in TOP)


def _core_ok(where: str, module: str) -> bool:
    if where.removeprefix("explanation/").removesuffix(".py") in {t.split(".")[1] for t in TOP}:
        return True
    return not (_under(module, "engine") or _under(module, "methods") or any(_under(module, t) for t in TOP))


@pytest.mark.parametrize("package, rule", [("engine", _engine_ok), ("methods", _methods_ok),
                                           ("explanation", _core_ok)])
def test_dependency_direction(package, rule):
    assert files_of(package), package
    assert _violations(package, rule) == []


def test_dispatcher_lives_in_explanation_and_joins_both():
    found = imports_of(LIB / "explanation" / "dispatch.py")
    assert any(_under(m, "engine") for m in found) and any(_under(m, "methods") for m in found)
    assert not (LIB / "methods" / "dispatch.py").exists() and not (LIB / "methods" / "keywords.py").exists()


def test_the_import_reader_sees_relative_lazy_and_absolute_imports():
    """The check can fail: each import style of a forbidden module is found and refused."""
    source = ("from ..methods import gradient\n"
              "def f():\n    from ..methods.common import forward\n    import NeuroRelevanceLib.methods.summary\n"
              "from ..explanation import dispatch\nfrom .rules import make_rule\n")
    found = imports_in(source, "engine/probe.py")
    assert {"methods", "methods.gradient", "methods.common", "methods.summary", "explanation.dispatch",
            "engine.rules"} <= found
    assert not _engine_ok("engine/probe.py", "methods.common")
    assert not _engine_ok("engine/probe.py", "explanation.dispatch")
    assert _engine_ok("engine/api.py", "explanation.keywords") and _engine_ok("engine/api.py", "engine.rules")
    assert not _methods_ok("methods/gradient.py", "engine.api")
    assert not _methods_ok("methods/gradient.py", "explanation.keywords")
    assert not _core_ok("explanation/result.py", "engine.presets")
    assert _core_ok("explanation/dispatch.py", "engine")


def test_importing_the_explanation_core_does_not_load_the_engine_or_methods():
    code = ("import sys, NeuroRelevanceLib.explanation, NeuroRelevanceLib.explanation.result, "
            "NeuroRelevanceLib.explanation.filters\n"
            "print(sorted(m for m in sys.modules if m.startswith(('NeuroRelevanceLib.engine', "
            "'NeuroRelevanceLib.methods', 'NeuroRelevanceLib.explanation.dispatch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(LIB.parent)})
    assert out.stdout.strip() == "[]"
