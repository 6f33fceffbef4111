"""``neurorelevance explain``: one scan, several scans or a cohort table → maps, tables, PNGs, group results.

``register(subparsers)`` adds the sub-command; :func:`run_explain` calls :func:`batch.explain_cohort`
with a progress bar (a line per subject when stderr is not a terminal) and prints the summary.
:func:`add_executor_arguments` and :func:`executor_from_args` give ``--workers``/``--scheduler`` to
other commands (``neurorelevance cohort``). Nothing heavy is imported until the command runs.
Exit codes: 0 every subject explained (or already complete), 3 some subjects failed (named in the
summary), 2 a user error (nothing could be explained), 1 an unexpected error.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: exit code when some subjects failed and the others were written
SOME_FAILED = 3


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """``--workers N`` and ``--scheduler ADDRESS`` (mutually exclusive): where the subjects' tasks run."""
    from ..cli_checks import number

    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=number(1, 4096, integer=True), default=None, metavar="N",
                       help="run on a Dask LocalCluster of N worker processes on this machine "
                            "(default: everything in this process, no cluster; range [1, 4096])")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (one started with "
                            "dask-jobqueue on SLURM: see docs/batch.md)")


def executor_from_args(args: argparse.Namespace):
    """The executor ``--workers``/``--scheduler`` ask for (None: run in this process)."""
    if args.workers is None and args.scheduler is None:
        return None
    from .executor import DaskExecutor

    return DaskExecutor(workers=args.workers, scheduler=args.scheduler)


@contextmanager
def collector_from_args(args: argparse.Namespace, model: str) -> Iterator:
    """For ``neurorelevance cohort``: the activation collector ``--workers``/``--scheduler`` ask for (None:
    in this process); its workers load ``model`` once each. The executor is closed afterwards."""
    executor = executor_from_args(args)
    if executor is None:
        yield None
        return
    from pathlib import Path

    from .activations import distributed_collector
    from .worker import ModelSource

    try:
        yield distributed_collector(executor, ModelSource(str(Path(model).resolve()), device=args.device))
    finally:
        executor.close()


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``explain`` sub-command; returns its parser (``func`` set to :func:`run_explain`)."""
    from ..cli import PLUGINS
    from ..cli_checks import number
    from ..vocabulary import OPTIONS, add_option

    p = subparsers.add_parser(
        "explain", help=PLUGINS["explain"][1],
        description="Explain one scan, several scans or a cohort table. Re-running the same command resumes: "
                    "subjects whose outputs are complete are skipped.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="scan files (NIfTI, NRRD, MetaImage) or DICOM series folders; for a multi-channel model "
                        "one file per channel, comma-separated, in the card's order; or one CSV/TSV table with "
                        "'path' (or 'path_<channel>' per channel) and optional 'id', 'group' and covariates")
    p.add_argument("--model", required=True, metavar="CARD",
                   help="model card (.json); its weights may be a state dict, TorchScript or .pt2 file")
    p.add_argument("--output", default="explain-output", metavar="DIR", help="output folder (default: %(default)s)")
    add_option(p, "method", choices=None,  # the library also takes aliases (saliency, ig, ...) and summary
               help_suffix="default: %(default)s; " + ", ".join(OPTIONS["method"].items) + ", summary")
    add_option(p, "preset")
    add_option(p, "alpha")
    add_option(p, "epsilon", default=None, help_suffix=f"default: {OPTIONS['epsilon'].library_default:g}")
    add_option(p, "gamma", default=None, help_suffix=f"default: {OPTIONS['gamma'].library_default:g}")
    add_option(p, "target")
    add_option(p, "filter", help_suffix="default: none")
    add_option(p, "filter_range", nargs=2, metavar=("LOW", "HIGH"), help_suffix="default: 0 1")
    add_option(p, "filter_placement", help_suffix="default: %(default)s")
    add_option(p, "atlas", nargs="+", metavar="ATLAS",
               help_suffix="several for several tables; default: AAL3; 'none' for no tables")
    add_option(p, "min_overlap", help_suffix="default: %(default)s")
    add_option(p, "min_region_voxels", default=None, help_suffix="default: as 'neurorelevance regions'")
    add_option(p, "min_region_mm3", default=None, help_suffix="default: as 'neurorelevance regions'")
    p.add_argument("--reference-group", default=None, metavar="GROUP",
                   help="the table's group the others are compared with (region gain, Böhle et al.)")
    add_option(p, "gain_on", help_suffix="default: %(default)s")
    p.add_argument("--no-png", action="store_true", help="skip the labelled PNG of each subject")
    add_option(p, "device", choices=None, help_suffix="or cpu:0, cuda:N; default: %(default)s")
    p.add_argument("--batch-size", type=number(1, 4096, integer=True), default=1, metavar="N",
                   help="subjects per task; each is still explained on its own (default: 1)")
    add_executor_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="recompute every subject, also complete ones and those made with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    p.set_defaults(func=run_explain)
    return p


def run_explain(args: argparse.Namespace) -> int:
    """Run ``explain`` for parsed ``args``; InputError goes to the command line's handler (exit 2)."""
    from ..cli_checks import device_argument
    from ..errors import InputError
    from ..vocabulary import library_filter, spelled
    from .progress import ProgressReporter
    from .run import explain_cohort
    from .summary import summary_lines

    device_argument(args.device)  # the message every sub-command gives, before the inputs are read

    inputs = args.inputs[0] if len(args.inputs) == 1 and args.inputs[0].lower().endswith((".csv", ".tsv")) \
        else list(args.inputs)
    atlases = () if args.atlas and [a.lower() for a in args.atlas] == ["none"] else tuple(args.atlas or ("AAL3",))
    engine = {name: getattr(args, name) for name in ("epsilon", "gamma") if getattr(args, name) is not None}
    reporter = None if args.quiet else ProgressReporter(0, stream=sys.stderr, spelling="flag")
    executor = executor_from_args(args)
    try:
        result = explain_cohort(
            inputs, args.model, args.output, method=args.method, preset=args.preset, target=_target(args.target),
            filter=library_filter(args.filter), filter_range=tuple(args.filter_range),
            filter_placement=args.filter_placement,
            alpha=args.alpha, atlases=atlases, min_overlap=args.min_overlap,
            min_region_voxels=args.min_region_voxels, min_region_mm3=args.min_region_mm3, png=not args.no_png,
            reference_group=args.reference_group, gain_on=args.gain_on, device=args.device, batch_size=args.batch_size,
            executor=executor, overwrite=args.overwrite, progress=reporter,
            log=None if args.quiet else (lambda message: print(message, flush=True)), **engine)
    finally:
        if reporter is not None:
            reporter.close()
        if executor is not None:
            executor.close()
    for line in summary_lines(result.summary, result.out_dir, spelling="flag"):
        print(line)
    counts = result.summary["counts"]
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        first = result.summary["failed"][0]
        where = "nothing was written" if result.out_dir is None else f"see {result.out_dir / 'summary.json'}"
        raise InputError(f"no subject could be explained ({counts['failed']} failed; e.g. {first['id']}: "
                         f"{spelled(first['reason'], 'flag')}); {where}.")
    return SOME_FAILED if counts["failed"] else 0


def _target(text):
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text
