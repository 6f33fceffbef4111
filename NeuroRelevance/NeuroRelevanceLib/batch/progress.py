"""Progress of a batch run: a bar with rate and ETA on a terminal, one line per subject otherwise."""
from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 28


class ProgressReporter:
    """Call with each subject's result (``id``, ``status``, ``seconds``, ``reason``); :meth:`close` at the end.

    On a terminal the bar is redrawn in place (``\\r``): done/total, failures, subjects per minute
    and the estimated time left; in a log file (SLURM output, CI) each subject gets its own line. A failure's
    reason names options as ``spelling`` says (``vocabulary.SPELLINGS``; the command line: flags).
    """

    def __init__(self, total: int, stream: TextIO | None = None, tty: bool | None = None,
                 spelling: str = "keyword") -> None:
        self.total = max(int(total), 0)
        self.spelling = spelling
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self._drawn = False

    def start(self, total: int) -> None:
        """Begin counting ``total`` subjects (called by ``explain_cohort`` once it knows how many run)."""
        self.total, self.done, self.failed = max(int(total), 0), 0, 0
        self.started = time.perf_counter()

    def __call__(self, result: dict) -> None:
        self.done += 1
        if result.get("status") == "failed":
            self.failed += 1
        if self.tty:
            self._draw()
        else:
            self._line(result)

    def _line(self, result: dict) -> None:
        width = len(str(self.total))
        text = f"[{self.done:>{width}}/{self.total}] {result.get('id')} {result.get('status')}"
        if result.get("status") == "failed":
            from ..vocabulary import spelled

            text += f": {spelled(result.get('reason', ''), self.spelling)}"
        else:
            text += f" ({float(result.get('seconds') or 0.0):.1f} s)"
        print(text, file=self.stream, flush=True)

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.started
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(_WIDTH * fraction))
        rate = self.done / elapsed * 60.0 if elapsed > 0 else 0.0
        left = (self.total - self.done) * elapsed / self.done if self.done else 0.0
        failed = f" · {self.failed} failed" if self.failed else ""
        text = (f"\r[{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total}{failed} · "
                f"{rate:.1f}/min · ETA {_clock(left)} ")
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line (terminal); nothing to do for line-per-subject output."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
