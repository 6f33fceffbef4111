"""The values of command-line arguments: number and port types, device names, and the ranges help texts state.

- :func:`number` and :func:`port` are argparse types that name the valid range in their error; a
  :func:`number` type carries its range (``span``) for the help text, which :func:`with_range` adds.
- :func:`device_argument` takes torch's own spellings (auto, cpu, cpu:0, cuda, cuda:N) and refuses any
  other name, or a CUDA device this machine lacks, with the one message every sub-command gives.
Nothing heavy is imported at module level (the ``--help`` path stays fast).
"""
from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

from .errors import InputError

#: the device names the command line takes: torch's spellings of the CPU and of one CUDA device, or auto
DEVICE_NAMES = re.compile(r"auto|cpu(:0)?|cuda(:(0|[1-9][0-9]*))?")


def with_range(help_text: str | None, span: str) -> str | None:
    """``help_text`` with the range ``span`` ("in [0, 100]") as a note, unless it states it already: "(range
    [0, 100])", or "; range [0, 100]" after a help text that ends in a parenthesis (never two in a row)."""
    if not span.startswith("in [") or help_text is None or help_text == argparse.SUPPRESS:
        return help_text
    note = f"range {span.removeprefix('in ')}"
    if span.removeprefix("in ") in help_text:
        return help_text
    return f"{help_text}; {note}" if help_text.endswith(")") else f"{help_text} ({note})"


def number(low: float = -math.inf, high: float = math.inf, *, integer: bool = False,
           low_open: bool = False, unit: str = "") -> Callable[[str], Any]:
    """An argparse type: a finite number (an integer if asked) in [low, high] (``(low, high]``)."""
    kind = "an integer" if integer else "a number"
    bracket = "(" if low_open else "["
    if math.isinf(low) and math.isinf(high):
        span = ""
    elif math.isinf(high):
        span = f" {'>' if low_open else '>='} {plain_number(low)}"
    else:
        span = f" in {bracket}{plain_number(low)}, {plain_number(high)}]"
    expected = f"{kind}{span}{' ' + unit if unit else ''}"

    def convert(text: str):
        try:
            value = int(text) if integer else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    convert.__name__ = kind
    convert.span = span.strip()  # type: ignore[attr-defined]  # "in [0, 100]", ">= 1" or "": for help texts
    return convert


def plain_number(value: float) -> str:
    """A bound as people write it: whole numbers in full ("1048576", not "1.04858e+06"), others short."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (0: any free port)."""
    return number(0, 65535, integer=True)(text)


def device_argument(device: str, option: str = "--device") -> None:
    """Refuse a device name that is unknown or not available here before anything is loaded: the one
    message every sub-command gives (in command-line words)."""
    from .device import DeviceError, resolve_device

    if not DEVICE_NAMES.fullmatch(str(device)):
        raise InputError(f"{option} {device}: unknown device; use auto, cpu (or cpu:0), cuda or cuda:N.")
    try:
        resolve_device(device)
    except DeviceError as exc:  # the name is known (checked above): CUDA is missing or the index too high
        if exc.no_cuda:
            raise InputError(f"{option} {device}: no CUDA device is available here; use {option} auto (CUDA when "
                             f"present) or {option} cpu.") from None
        raise InputError(f"{option} {exc}") from None
