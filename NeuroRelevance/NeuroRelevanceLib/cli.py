"""``neurorelevance`` command line: the main job and the headless tools."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import InputError

#: feature packages that add their own sub-commands through ``register(subparsers)``
PLUGINS = ("NeuroRelevanceLib.cohort.cli", "NeuroRelevanceLib.regions.cli", "NeuroRelevanceLib.metrics.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorelevance",
        description="Relevance maps (LRP and related methods) for 3D brain networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the end-to-end demo and write its files")
    demo.add_argument("--output", default="demo-output", help="output folder (default: %(default)s)")
    demo.set_defaults(func=_demo)
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name and not name.startswith(str(exc.name)):
                raise
            continue
        module.register(commands)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .smoke import run_smoke

    run_smoke(args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
