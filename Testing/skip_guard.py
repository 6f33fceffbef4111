"""A pytest plugin that fails the run when a whole test module was skipped.

A module skipped wholesale — an ``importorskip`` at module level that fired, a ``pytestmark`` skip, every
test skipping in its fixtures — shows as a line of "s" while CI passes: a broken import or a missing
requirement hides every test in it. This plugin counts, per module, the tests that ran and those that
skipped (``xfail`` counts as run) and, at the end of the session, fails it if some module ran nothing but
skipped something, unless that module is in the ``allowed`` list with the reason it may be skipped.

``conftest.py`` registers it with :data:`ALLOWED`. Set ``NEURORELEVANCE_ALLOW_MODULE_SKIPS=1`` to report
instead of failing (a partial environment, e.g. a pip install without the test requirements).
"""
from __future__ import annotations

import os

import pytest

#: test module file name -> why it may be skipped as a whole (each module keeps its own stricter check)
ALLOWED: dict[str, str] = {
    "test_web_browser.py": "needs Debian's chromium and OSMesa; under CI, where run.py can install them, "
                           "the module fails instead of skipping (STRICT)",
    "test_web_reading.py": "needs Debian's chromium and OSMesa; strict under CI like test_web_browser.py",
}

ENV_SWITCH = "NEURORELEVANCE_ALLOW_MODULE_SKIPS"


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class SkipGuard:
    """Counts run and skipped tests per module; fails the session on a module skipped as a whole."""

    def __init__(self, allowed: dict[str, str]) -> None:
        self.allowed = dict(allowed)
        self.ran: set[str] = set()
        self.skipped: dict[str, str] = {}   # module -> first skip reason seen
        self.offenders: dict[str, str] = {}

    def _skip(self, module: str, longrepr: object) -> None:
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        self.skipped.setdefault(module, str(reason))

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and report.nodeid.endswith(".py"):   # the module itself was skipped at import
            self._skip(_module_of(report.nodeid), report.longrepr)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = _module_of(report.nodeid)
        if report.skipped and not hasattr(report, "wasxfail"):
            self._skip(module, report.longrepr)
        elif report.when == "call" or hasattr(report, "wasxfail") or report.failed:
            self.ran.add(module)

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        names = {module: os.path.basename(module) for module in self.skipped}
        self.offenders = {module: reason for module, reason in self.skipped.items()
                          if module not in self.ran and names[module] not in self.allowed}
        if self.offenders and not os.environ.get(ENV_SWITCH) and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.offenders:
            return
        terminalreporter.section("test modules skipped as a whole", sep="=", red=True, bold=True)
        for module, reason in sorted(self.offenders.items()):
            terminalreporter.line(f"{module}: {reason}")
        terminalreporter.line(f"A module that skips every test hides failures. Install what it needs (requirements/"
                              f"), fix its import, or list it in Testing/skip_guard.py ALLOWED with the reason; "
                              f"{ENV_SWITCH}=1 only reports.")
