"""No test module may be skipped as a whole without a documented reason (skip_guard.py), and the test files
keep the patterns that hid failures before: one ``pytestmark`` per module, no module-level skip on import
failure of our own package."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

MODULES = {
    "test_importskip.py": "import pytest\npytest.importorskip('no_such_module_for_the_skip_guard')\n"
                          "def test_a():\n    pass\n",
    "test_marked.py": "import pytest\npytestmark = pytest.mark.skipif(True, reason='marked away')\n"
                      "def test_a():\n    pass\ndef test_b():\n    pass\n",
    "test_fixture.py": "import pytest\n@pytest.fixture\ndef need():\n    pytest.skip('fixture away')\n"
                       "def test_a(need):\n    pass\n",
    "test_mixed.py": "import pytest\ndef test_a():\n    pass\ndef test_b():\n    pytest.skip('one of two')\n",
    "test_xfail.py": "import pytest\n@pytest.mark.xfail(reason='known')\ndef test_a():\n    assert False\n",
    "test_allowed.py": "import pytest\npytest.importorskip('no_such_module_for_the_skip_guard')\n"
                       "def test_a():\n    pass\n",
}
CONFTEST = ("from skip_guard import SkipGuard\n"
            "def pytest_configure(config):\n"
            "    config.pluginmanager.register(SkipGuard({'test_allowed.py': 'documented'}), 'guard')\n")


def _run(folder: Path, *names: str, switch: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NEURORELEVANCE_ALLOW_MODULE_SKIPS"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    if switch:
        env["NEURORELEVANCE_ALLOW_MODULE_SKIPS"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
           "--rootdir", str(folder), *names]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("skip-guard")
    (root / "conftest.py").write_text(CONFTEST)
    for name, text in MODULES.items():
        (root / name).write_text(text)
    return root


def test_a_module_skipped_as_a_whole_fails_the_run_and_is_named(folder):
    done = _run(folder)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    section = out.split("test modules skipped as a whole", 1)[1]
    for name in ("test_importskip.py", "test_marked.py", "test_fixture.py"):
        assert name in section, out
    for name in ("test_mixed.py", "test_xfail.py", "test_allowed.py"):
        assert name not in section, out


def test_partly_skipped_xfail_and_allowed_modules_pass(folder):
    done = _run(folder, "test_mixed.py", "test_xfail.py", "test_allowed.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_switch_reports_without_failing(folder):
    done = _run(folder, "test_marked.py", switch=True)
    assert done.returncode == 0 and "test_marked.py: Skipped: marked away" in done.stdout, done.stdout + done.stderr


def _module_level(tree: ast.Module):
    """Statements run at import (module body, including try/if blocks), not inside functions or classes."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.Try, ast.If, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)


@pytest.mark.parametrize("path", sorted(HERE.glob("test_*.py")), ids=lambda p: p.name)
def test_test_module_patterns_that_hid_failures(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    marks = 0
    for node in _module_level(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            marks += sum(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets)
        for call in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if call.func.attr == "skip":
                assert not any(k.arg == "allow_module_level" for k in call.keywords), \
                    f"{path.name}:{call.lineno}: a module-level skip hides every test in it; let it fail"
            if call.func.attr == "importorskip" and call.args and isinstance(call.args[0], ast.Constant):
                assert not str(call.args[0].value).startswith("NeuroRelevanceLib"), \
                    f"{path.name}:{call.lineno}: our own package must import or fail, never skip"
    assert marks <= 1, f"{path.name} assigns pytestmark {marks} times: only the last one takes effect"
