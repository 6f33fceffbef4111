"""``neurorelevance`` command line: the main job and the headless tools."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import InputError

#: feature packages that add their own sub-commands through ``register(subparsers)``
PLUGINS = ("NeuroRelevanceLib.cohort.cli", "NeuroRelevanceLib.regions.cli", "NeuroRelevanceLib.metrics.cli",
           "NeuroRelevanceLib.web")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorelevance",
        description="Relevance maps (LRP and related methods) for 3D brain networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="explain a held-out synthetic AD-like brain with the "
                                             "demo network and write the files")
    demo.add_argument("--output", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument("--spacing", type=float, default=2.0,
                      help="resolution of the generated scan in mm (default: %(default)s)")
    demo.add_argument("--atlas", default="DesikanKilliany",
                      help="atlas for the region table (default: %(default)s)")
    demo.add_argument("--smoke", action="store_true",
                      help="only the MRML bridge smoke run (no network)")
    demo.set_defaults(func=_demo)
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a missing optional package disables that command only
            print(f"note: '{name.split('.')[-2]}' commands unavailable ({exc}).", file=sys.stderr)
            continue
        module.register(commands)
    return parser


def _demo(args: argparse.Namespace) -> int:
    if args.smoke:
        from .smoke import run_smoke

        run_smoke(args.output)
        return 0
    from .demo_run import run_demo

    run_demo(args.output, spacing=args.spacing, atlas=args.atlas)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
