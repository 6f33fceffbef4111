#!/usr/bin/env python3
"""One entry point for a fresh machine: builds ``.venv`` when needed, then runs the job.

    python3 run.py demo      # the main job (writes ./demo-output and prints where)
    python3 run.py test      # the whole test suite (pytest on Testing/)
    python3 run.py web       # the browser viewer on http://127.0.0.1:8080
    python3 run.py lint      # ruff check + the mypy type check (configuration in pyproject.toml)

Any further arguments go to the job (``python3 run.py test -k mrml``). The virtual environment is
rebuilt only when a requirements file or ``pyproject.toml`` changed, so a second run starts in
seconds. Only the standard library is used here, so plain ``python3`` is enough to start.
"""
from __future__ import annotations

import ctypes.util
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".neurorelevance-stamp"
REQUIREMENTS = ["requirements/base.txt", "requirements/test.txt"]
NO_DEPS = "requirements/nodeps.txt"
INPUTS = REQUIREMENTS + [NO_DEPS, "pyproject.toml", "run.py"]
#: lint/type-check tools: installed only by the ``lint`` job, with their own stamp, so ``test`` stays as fast
DEV_REQUIREMENTS = "requirements/dev.txt"
DEV_STAMP = VENV / ".neurorelevance-dev-stamp"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint(names: list[str] = INPUTS) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(cmd: Sequence[str | Path]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_venv() -> Path:
    """Create or update ``.venv`` from the pinned requirements; no-op when up to date."""
    py = _venv_python()
    want = _fingerprint()
    if py.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return py
    if sys.version_info < (3, 10):  # noqa: UP036 - run.py is started by whatever python3 is on the PATH
        sys.exit(f"NeuroRelevance needs Python >= 3.10 (found {sys.version.split()[0]}).")
    if not py.exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip: list[str | Path] = [py, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    reqs: list[str | Path] = []
    for name in REQUIREMENTS:
        reqs += ["-r", name]
    _run(pip + reqs)
    _run(pip + ["--no-deps", "-r", NO_DEPS])
    _run(pip + ["--no-deps", "-e", "."])
    STAMP.write_text(want + "\n")
    return py


def ensure_dev_tools(py: Path) -> None:
    """Install ``requirements/dev.txt`` (ruff, mypy) into ``.venv``; no-op when up to date.

    Its stamp covers the main fingerprint too, so a rebuilt ``.venv`` gets the tools again.
    """
    want = _fingerprint(INPUTS + [DEV_REQUIREMENTS])
    if DEV_STAMP.exists() and DEV_STAMP.read_text().strip() == want:
        return
    _run([py, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "-r", DEV_REQUIREMENTS])
    DEV_STAMP.write_text(want + "\n")


def lint(py: Path, env: dict[str, str]) -> int:
    """``ruff check`` then ``mypy``, both configured in ``pyproject.toml``; both run, the worst status wins."""
    codes = []
    for cmd in ([str(py), "-m", "ruff", "check", "."], [str(py), "-m", "mypy"]):
        print("+", " ".join(cmd[2:]), flush=True)
        codes.append(subprocess.call(cmd, cwd=ROOT, env=env))
    return next((code for code in codes if code), 0)


#: Debian packages the web viewer (offscreen OpenGL) and its browser tests need
SYSTEM_PACKAGES = {
    "libosmesa6": lambda: ctypes.util.find_library("OSMesa"),
    "chromium": lambda: os.path.exists("/usr/bin/chromium"),  # the path the browser tests use
}


def ensure_system_packages(names: list[str]) -> None:
    """Install missing Debian packages with apt-get when running as root; otherwise say how.

    Never fatal: without them the web viewer cannot render and its browser tests skip with a
    reason (under CI on a root Debian machine they fail instead), everything else works.
    """
    missing = [n for n in names if not SYSTEM_PACKAGES[n]()]
    if not missing:
        return
    if os.name != "posix" or not shutil.which("apt-get") or os.geteuid() != 0:
        print(f"note: the web viewer needs {', '.join(missing)} (offscreen OpenGL / a browser for its "
              f"tests). On Debian/Ubuntu: sudo apt-get install {' '.join(missing)}; elsewhere install "
              "OSMesa and Chromium with your package manager. Until then those tests skip.", flush=True)
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"Installing {', '.join(missing)} with apt-get ...", flush=True)
    subprocess.call(["apt-get", "update", "-qq"], env=env)
    for name in missing:  # one by one: a package missing from this release must not block the other
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", name]
        if subprocess.call(cmd, env=env) != 0:
            print(f"warning: '{' '.join(cmd)}' failed; the web viewer's browser tests will not run.",
                  flush=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup", "web", "lint"}:
        print(__doc__.strip())
        return 2
    job, rest = argv[0], argv[1:]
    py = ensure_venv()
    if job == "setup":
        ensure_system_packages(list(SYSTEM_PACKAGES))
        return 0
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    if job == "lint":
        ensure_dev_tools(py)
        return lint(py, env)
    if job == "test":
        ensure_system_packages(["libosmesa6", "chromium"])
        cmd = [str(py), "-m", "pytest", "Testing", *rest]
    elif job == "web":
        ensure_system_packages(["libosmesa6"])
        cmd = [str(py), "-m", "NeuroRelevanceLib", "web", *rest]
    else:
        cmd = [str(py), "-m", "NeuroRelevanceLib", "demo", *rest]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
