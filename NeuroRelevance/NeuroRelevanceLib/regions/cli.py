"""``neurorelevance regions``: relevance per atlas region from the command line.

``register(subparsers)`` adds the sub-command; :func:`run_regions` prints the top regions and
writes the CSV table and the bar chart when asked.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_checks import atlas_argument, check_output_file, number, spare_inputs
from ..vocabulary import add_option, check_region_effect, spelled
from .statistics import AtlasOverlapError

#: how a command-line user brings a heatmap into the atlas' space (there is no transform option)
CLI_OVERLAP_FIX = ("Bring the heatmap into the atlas' space first (register the scan to the atlas' template, e.g. "
                   "MNI152 with ANTs or SimpleITK, apply that transform to the heatmap and pass the resampled file), "
                   "or lower --min-overlap to accept the partial overlap.")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``regions`` sub-command; returns its parser (``func`` default set to run_regions)."""
    p = subparsers.add_parser(
        "regions", help="relevance per atlas region (sum, density, positive fraction, gain; Böhle et al. 2019)")
    p.add_argument("heatmaps", nargs="*", help="heatmap NIfTI/NRRD files (several = a group: means over subjects)")
    add_option(p, "atlas", default="AAL3", help_suffix="default: %(default)s")
    p.add_argument("--names", default=None, help="lookup table for a label-map atlas (.txt/.ctbl/.csv/.tsv)")
    p.add_argument("--reference", nargs="+", default=None, help="heatmaps of a reference group (adds gain)")
    add_option(p, "gain_on", help_suffix="the group of --reference; default: %(default)s")
    p.add_argument("--pool", action="store_true", help="pool left and right regions by name")
    add_option(p, "min_overlap", help_suffix="heatmaps with less are refused; default: %(default)s")
    p.add_argument("--rank-by", default="density", help="metric to rank by (default: %(default)s)")
    add_option(p, "min_region_voxels", help_suffix="default: %(default)s")
    add_option(p, "min_region_mm3", help_suffix="default: %(default)s")
    p.add_argument("--per-subject", action="store_true", help="one row per subject and region")
    p.add_argument("--top", type=number(1, integer=True), default=15,
                   help="rows to print and bars to plot (default: %(default)s)")
    p.add_argument("--csv", default=None, help="write the full table here")
    p.add_argument("--png", default=None, help="write a bar chart of the top regions here")
    p.add_argument("--list-atlases", action="store_true", help="list the bundled atlases and exit")
    p.set_defaults(func=run_regions)
    return p


def run_regions(args: argparse.Namespace) -> int:
    """Run for parsed ``args``; InputError propagates to the caller (the main CLI prints it).

    Everything that can be checked before the statistics is: the atlas is read and the output
    files proven writable first, so a typo never costs a whole run.
    """
    import pandas as pd

    from ..errors import InputError
    from . import available_atlases, plot_top_regions, region_statistics, write_csv

    if args.list_atlases:
        listing = pd.DataFrame(available_atlases())
        print(listing[["name", "labels", "space", "resolution_mm", "package", "installed"]].to_string(index=False))
        for record in available_atlases():
            print(f"\n{record['name']}: {record['licence']}")
        return 0
    if not args.heatmaps:
        raise InputError("No heatmap given; pass one or more heatmap files (or --list-atlases).")
    if args.png and args.per_subject:
        raise InputError("--png plots one table; drop --per-subject to plot the group.")
    check_region_effect({"gain_on": args.gain_on}, atlas=True, reference=args.reference is not None,
                        reference_part=("reference", "HEATMAP", "--reference"))
    spare_inputs({"heatmap": args.heatmaps, "--reference": args.reference, "--atlas": args.atlas,
                  "--names": args.names}, files={"--csv": args.csv, "--png": args.png})
    check_output_file(args.csv, "--csv")
    check_output_file(args.png, "--png")
    atlas_argument(args.atlas, names=args.names)
    heatmaps = list(args.heatmaps) if len(args.heatmaps) > 1 else args.heatmaps[0]
    try:
        table = region_statistics(heatmaps, args.atlas, reference=args.reference, pool_hemispheres=args.pool,
                                  names=args.names, min_overlap=args.min_overlap, rank_by=args.rank_by,
                                  per_subject=args.per_subject, min_region_voxels=args.min_region_voxels,
                                  min_region_mm3=args.min_region_mm3, gain_on=args.gain_on)
    except AtlasOverlapError as exc:  # the command line has no transform= (the library's way out)
        raise exc.with_fix(CLI_OVERLAP_FIX) from None
    if isinstance(heatmaps, str):  # a heatmap written by NeuroRelevance: carry its record into the table
        from .scan_tables import attach_sidecar_record

        attach_sidecar_record(table, heatmaps, args)
    for path in (args.csv, args.png):   # the files first: a closed pipe (| head) must not lose them
        if path:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    written = []
    if args.csv:
        written.append(f"table: {write_csv(table, args.csv)}")
    if args.png:
        plot_top_regions(table, args.png, metric=args.rank_by, k=args.top)
        written.append(f"chart: {args.png}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.head(args.top).to_string(index=False, float_format="%.4g"))
    print(f"atlas {table.attrs['atlas']} ({table.attrs['space']}) on the heatmap's grid ({table.attrs['grid']}); "
          f"relevance inside the atlas: {table.attrs['overlap']:.1%}")
    if table.attrs.get("gain_summary"):
        print(f"note: {spelled(table.attrs['gain_summary'], 'flag')}")
    for line in written:
        print(line)
    return 0
