"""``neurorelevance cohort``: the cohort decomposition (docs/glossary.md, cohort paper) from the command line.

``register(subparsers)`` adds the sub-command to an argparse subparsers object; it calls
:func:`run_cohort`. The model is read with ``NeuroRelevanceLib.models.load_model`` (model card
``.json`` + weights, TorchScript archive, or ``.pt2``); TorchScript models take no forward
hooks, so there the layer must be a top-level child of a plain chain (checked).
"""
from __future__ import annotations

import argparse

from ..batch.cli import add_executor_arguments, collector_from_args
from ..cli_checks import (
    atlas_argument,
    device_argument,
    load_model_argument,
    model_files,
    number,
    output_folder,
    spare_inputs,
)
from ..folder_owner import OUTPUT_MARKER
from ..vocabulary import add_option

RANK = number(1, 1000, integer=True)
#: what the command writes in its --out folder (see cohort.outputs.write_outputs); an input there is refused
WRITES = ("rois/*", "decomposition.npz", "scree.png", "scree.csv", "rank_errors.png", "rank_grid.csv",
          "loadings.csv", "loadings_vs_target.png", "linear_model_selection.csv", "roi_regions.csv", "summary.json",
          OUTPUT_MARKER)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``cohort`` sub-command; returns its parser (``func`` default set to run_cohort)."""
    p = subparsers.add_parser(
        "cohort", help="dataset-level explanation: non-negative Tucker decomposition of a layer's "
                       "activations over a cohort (RoI maps, rank selection, linear model)")
    p.add_argument("cohort", help="folder with NIfTI volumes and targets.csv, or a CSV with columns "
                                  "path,target[,split]")
    p.add_argument("--model", required=True, help="model card (.json), TorchScript file or .pt2")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--layer", default=None, help="module name to decompose (default: last 3D feature map)")
    p.add_argument("--rank", type=RANK, nargs=2, metavar=("R1", "R2"), default=None,
                   help="use these ranks instead of the elbow suggestion")
    p.add_argument("--r1", type=RANK, nargs=2, metavar=("MIN", "MAX"), default=(2, 10),
                   help="R1 values of the rank grid, MIN to MAX (default: 2 10)")
    p.add_argument("--r2", type=RANK, nargs=2, metavar=("MIN", "MAX"), default=(2, 10),
                   help="R2 values of the rank grid, MIN to MAX (default: 2 10)")
    p.add_argument("--no-grid", action="store_true", help="skip the rank grid (needs --rank)")
    p.add_argument("--signed", choices=("split", "rectify", "refuse"), default="split",
                   help="negative activations (a layer before its ReLU): decompose the positive and "
                        "negative parts (split, default), max(A, 0) (rectify), or stop (refuse)")
    p.add_argument("--sparsity", type=number(0.0, 100.0), nargs="+", default=[0.0, 0.01, 0.03, 0.1],
                   help="ℓ1 weights on U3 as fractions of the mean voxel norm, the one with the lowest "
                        "validation MAE is kept (default: 0 0.01 0.03 0.1)")
    p.add_argument("--target-column", default="target",
                   help="the cohort table's column with each subject's target (default: %(default)s)")
    p.add_argument("--batch-size", type=number(1, 4096, integer=True), default=4,
                   help="volumes per forward pass of the activation capture (default: %(default)s)")
    add_option(p, "device", choices=None, help_suffix="or cpu:0, cuda:N; default: %(default)s")
    p.add_argument("--seed", type=number(0, 2**32 - 1, integer=True), default=0,
                   help="seed of the train/validation/test split (when the table has no split column) and of the "
                        "decomposition's random start (default: %(default)s)")
    add_option(p, "atlas", help_suffix="here for per-RoI region summaries; optional")
    p.add_argument("--quiet", action="store_true", help="print nothing (no progress, no summary)")
    add_executor_arguments(p)  # the activations on Dask workers (each loads the model once)
    p.set_defaults(func=run_cohort)
    return p


def run_cohort(args: argparse.Namespace) -> int:
    """Run the pipeline for parsed ``args`` and print progress; returns 0.

    Arguments, the atlas, the output folder and the model are checked before the decomposition
    starts; an :class:`InputError` propagates to the command line's handler (one line, exit 2).
    """
    from pathlib import Path

    from .data import TARGETS_FILE, read_cohort
    from .pipeline import decompose_cohort

    _check_ranks(args)
    device_argument(args.device)
    atlas_argument(args.atlas)
    say = None if args.quiet else (lambda m: print(m, flush=True))
    table = read_cohort(args.cohort, target_column=args.target_column)
    source = Path(args.cohort)
    spare_inputs({"cohort table": source / TARGETS_FILE if source.is_dir() else source,
                  "cohort volume": table.paths, "--model": model_files(args.model), "--atlas": args.atlas},
                 folder=("--out", args.out), writes=WRITES)
    with output_folder(args.out, "--out", "cohort", signatures=("decomposition.npz",)) as out, \
            collector_from_args(args, args.model) as collect:
        loaded = load_model_argument(args.model, device=args.device)
        if say:
            say(f"[0/5 model] {loaded.summary()}")
        result = decompose_cohort(
            table, None, loaded.model, layer=args.layer, rank=args.rank, grid=not args.no_grid,
            r1_values=range(args.r1[0], args.r1[1] + 1), r2_values=range(args.r2[0], args.r2[1] + 1),
            signed=args.signed,
            sparsity_fractions=args.sparsity, batch_size=args.batch_size, device=args.device,
            seed=args.seed, atlas=args.atlas, out_dir=out, target_name=args.target_column,
            card=loaded.card, progress=say, collect=collect)
    if say:
        s = result.summary()
        say(f"rank {s['rank']}; linear-model MAE {s['linear_model_mae']}; network MAE {s['network_mae']}")
        say(f"outputs in {args.out}")
    return 0


def _check_ranks(args: argparse.Namespace) -> None:
    from ..errors import InputError

    for option in ("r1", "r2"):
        low, high = getattr(args, option)
        if low > high:
            raise InputError(f"--{option} {low} {high}: MIN must not exceed MAX; e.g. --{option} {high} {low}.")
    if args.no_grid and args.rank is None:
        raise InputError("--no-grid skips the rank search, so give the ranks with --rank R1 R2.")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m NeuroRelevanceLib.cohort.cli cohort ...`` (same handler as the CLI)."""
    from ..cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
