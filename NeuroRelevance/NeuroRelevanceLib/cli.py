"""``neurorelevance`` command line: the main job and the headless tools.

Every sub-command runs through :func:`run_command`, the one error handler: a user error
(:class:`InputError`, a bad argument, a file that cannot be read or written) is one line on
stderr and exit code 2; anything else is one line naming the log file that holds the full
traceback, and exit code 1; a refusal to run code from a file gets the command line's advice here.
Argument types and device names shared by the sub-commands live in :mod:`.cli_arguments`, output and
input checks in :mod:`.cli_checks`. Heavy packages are imported inside the commands, never here.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__
from .cli_arguments import number
from .cli_checks import Parser, atlas_argument, output_folder, report_unexpected, spare_inputs, user_error
from .errors import InputError
from .folder_owner import OUTPUT_MARKER
from .pretrained import DEMO_SUBJECTS
from .vocabulary import OptionError, add_option

#: sub-command -> (the module that adds it through ``register(subparsers)``, its line in the command list).
#: Only the module of the command being run is imported, so ``--help`` and argument errors stay fast.
PLUGINS = {
    "explain": ("NeuroRelevanceLib.batch.cli", "explain scans or a cohort table: relevance maps (NIfTI + JSON "
                "record), region tables, labelled PNGs, group mean/std maps and region gain; resumable, on Dask "
                "if asked"),
    "cohort": ("NeuroRelevanceLib.cohort.cli", "dataset-level explanation: non-negative Tucker decomposition of a "
               "layer's activations over a cohort (RoI maps, rank selection, linear model)"),
    "regions": ("NeuroRelevanceLib.regions.cli", "relevance per atlas region (sum, density, positive fraction, "
                "gain; Böhle et al. 2019)"),
    "compare": ("NeuroRelevanceLib.metrics.cli", "compare explanation methods on subjects: AOPC (region "
                "perturbation), mass/rank accuracy and inclusivity against masks; CSV table + PNG of the curves"),
    "web": ("NeuroRelevanceLib.web", "explore relevance maps in a browser (trame-slicer)"),
}
#: the demo scan's resolution limits (mm), those of the synthetic-subject generator
DEMO_SPACING = (0.5, 8.0)
#: what ``demo`` writes in its --output folder (demo_run.run_demo; the smoke run: smoke.*)
DEMO_WRITES = ("heatmap.nii.gz", "heatmap.json", "scan.nii.gz", "atrophy_mask.nii.gz", "regions.csv",
               "regions.png", "overlay.png", "scene.mrml", "scene-data/*", "smoke*", OUTPUT_MARKER)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the sub-command it names is built in full (the others are
    listed by name and help), so nothing heavy is imported for ``--help`` or a bad argument."""
    parser = Parser(
        prog="neurorelevance",
        description="Relevance maps (LRP and related methods) for 3D brain networks.")
    parser.add_argument("--version", action=_Versions)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="explain a generated brain that no network saw with a bundled demo "
                                             "network (the AD classifier, or --model brain_age_resnet) and write the "
                                             "files")
    demo.add_argument("--model", choices=list(DEMO_SUBJECTS), default="ad_cnn",
                      help="bundled network to explain, each on its own generated subject (index 9001, not part "
                           "of any cohort): "
                           f"{'; '.join(f'{name}, {s.help}' for name, s in DEMO_SUBJECTS.items())} "
                           "(default: %(default)s)")
    demo.add_argument("--output", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument("--spacing", type=number(*DEMO_SPACING, unit="mm"), default=2.0,
                      help="resolution of the generated scan in mm (default: %(default)s)")
    add_option(demo, "atlas", default="DesikanKilliany", help_suffix="default: %(default)s")
    demo.add_argument("--smoke", action="store_true",
                      help="only the MRML bridge smoke run (no network)")
    demo.set_defaults(func=_demo)
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for command, (name, summary) in PLUGINS.items():
        if chosen is not None and command != chosen:
            commands.add_parser(command, help=summary, add_help=False)  # listed; built when it is run
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a missing optional package disables that command only
            print(f"note: '{command}' command unavailable ({exc}).", file=sys.stderr)
            continue
        module.register(commands)
    return parser


class _Versions(argparse.Action):
    """``--version``: the project's version and those of torch, slicer-core and Python (nothing imported)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the versions of NeuroRelevance, torch, slicer-core and Python, and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def versions() -> str:
    """"neurorelevance X (torch Y, slicer-core Z, Python W)" from the installed packages' metadata."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return f"{name} not installed"

    return (f"neurorelevance {__version__} ({installed('torch')}, {installed('slicer-core')}, "
            f"Python {platform.python_version()})")


def _demo(args: argparse.Namespace) -> int:
    spare_inputs({"--atlas": None if args.smoke else args.atlas}, folder=("--output", args.output),
                 writes=DEMO_WRITES)
    if not args.smoke:
        atlas_argument(args.atlas)  # before 40 s of work, not after
    with output_folder(args.output, "--output", "demo", signatures=("heatmap.json", "smoke*")) as out:
        if args.smoke:
            from .smoke import run_smoke

            run_smoke(out)
            return 0
        from .demo_run import run_demo
        from .pretrained import model_card_path

        subject = DEMO_SUBJECTS[args.model]
        run_demo(out, spacing=args.spacing, atlas=args.atlas, card=model_card_path(args.model),
                 diagnosis=subject.diagnosis, age=subject.age)
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed sub-command through the common error handler; returns the exit code."""
    from .models.model_files import CLI_TRUST_HINT, UntrustedFileError

    command = f"neurorelevance {getattr(args, 'command', '') or ''}".strip()
    try:
        return int(args.func(args) or 0)
    except UntrustedFileError as exc:  # wherever a command met it: the command line's advice, not trusted=True
        return user_error(command, str(exc.advised(CLI_TRUST_HINT)))
    except OptionError as exc:  # the options as typed here: --alpha 3, not alpha=3.0
        return user_error(command, exc.spelled("flag"))
    except InputError as exc:
        return user_error(command, str(exc))
    except KeyboardInterrupt:
        print(f"{command}: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): files are written before printing; end quietly
        return _reader_gone()
    except OSError as exc:
        if exc.filename is None:
            return report_unexpected(command, exc)
        where = Path(str(exc.filename))
        return user_error(command, f"{where}: {exc.strerror or exc}; check the path and that you may "
                                   "read or write there.")
    except Exception as exc:  # a bug or an unforeseen failure: one line here, the traceback in a log
        return report_unexpected(command, exc)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; returns the exit code (never raises SystemExit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a bad argument (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    except BrokenPipeError:
        return _reader_gone()
    return run_command(args)


def _reader_gone() -> int:
    """stdout's reader closed the pipe: send what is left (and Python's final flush) to /dev/null; exit 0."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (e.g. a captured stream): nothing to redirect
        pass
    return 0
