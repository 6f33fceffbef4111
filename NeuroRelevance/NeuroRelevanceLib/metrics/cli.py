"""``neurorelevance compare``: several methods on several subjects → one table method × metric and a PNG.

``register(subparsers)`` adds the sub-command; :func:`run_compare` does the work. Subjects are NIfTI files
(one per input channel, comma-separated, in the model card's channel order), brought into the model's input
space by ``preprocessing.prepare_input``; ground-truth and brain masks are resampled (nearest neighbour, in
physical space) onto the same model grid.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_checks import check_output_file, device_argument, load_model_argument, model_files, number, spare_inputs
from ..vocabulary import add_option

_CAM = ("gradcam", "gradcam++", "guided_gradcam")


#: the methods and oracle blurs compared unless told (the help prints them as a user types them)
DEFAULT_METHODS = ("lrp", "gradient_x_input", "integrated_gradients", "guided_backprop", "gradcam++")
ORACLE_SIGMAS = (0.0, 1.0, 2.0)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command; returns its parser (``func`` default set to run_compare)."""
    p = subparsers.add_parser(
        "compare", help="compare explanation methods on subjects: AOPC (region perturbation), mass/rank "
                        "accuracy and inclusivity against masks; CSV table + PNG of the curves")
    p.add_argument("subjects", nargs="+", help="one NIfTI per subject (several channels: comma-separated, in the "
                                               "card's channel order)")
    p.add_argument("--model", required=True, help="model card (.json) with its weights")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   help=f"methods to compare (default: {' '.join(DEFAULT_METHODS)})")
    add_option(p, "preset", choices=None)  # checked against the live registry in _check_before_work
    p.add_argument("--layer", default=None, help="layer for the Grad-CAM family (default: last conv block)")
    add_option(p, "target", help_suffix="as for explain")
    p.add_argument("--ground-truth", nargs="+", default=None,
                   help="one lesion/atrophy label map per subject: the ground-truth report scores every method "
                        "against it beside the oracle and chance")
    p.add_argument("--ground-truth-labels", nargs="+", type=number(1, integer=True), default=None, metavar="LABEL",
                   help="label values of --ground-truth that form the mask (default: every non-zero label; "
                        "the demo cohort's AD-like atrophy is label 1)")
    p.add_argument("--brain-masks", nargs="+", default=None,
                   help="one brain mask per subject: the domain of the ground-truth scores and of inclusivity")
    p.add_argument("--twins", nargs="+", default=None,
                   help="one effect-free twin per subject (same channels): the true change map |subject - twin| "
                        "is the oracle (default: the mask itself)")
    add_option(p, "atlas", help_suffix="here for region precision@k")
    p.add_argument("--oracle-sigmas", nargs="+", type=number(0.0, 10.0), default=list(ORACLE_SIGMAS), metavar="SIGMA",
                   help=f"blur of the oracle in voxels (default: {' '.join(f'{v:g}' for v in ORACLE_SIGMAS)})")
    p.add_argument("--steps", type=number(1, 10000, integer=True), default=20,
                   help="perturbation steps (default: %(default)s)")
    p.add_argument("--fraction", type=number(0.0, 1.0, low_open=True), default=0.5,
                   help="share of regions removed at the end (default: %(default)s)")
    p.add_argument("--patch", type=number(1, 64, integer=True), default=1,
                   help="cubic patch edge in voxels (default: %(default)s)")
    p.add_argument("--baseline", default="0", help="replacement: a number, 'mean' or 'blur' (default: %(default)s)")
    p.add_argument("--random-repeats", type=number(1, 1000, integer=True), default=1,
                   help="random orders averaged (default: %(default)s)")
    p.add_argument("--inclusivity-threshold", "--threshold", dest="inclusivity_threshold", type=number(0.0, 1.0),
                   default=0.1,
                   help="inclusivity: relevance kept where |R|/max|R| > this (default: %(default)s; --threshold is "
                        "its older name)")
    add_option(p, "device", choices=None, help_suffix="or cpu:0, cuda:N; default: %(default)s")
    p.add_argument("--csv", default=None, help="write the method × metric table here")
    p.add_argument("--per-subject-csv", default=None, help="write one row per subject and method here")
    p.add_argument("--png", default=None, help="write the mean perturbation curves here")
    p.set_defaults(func=run_compare)
    return p


def _baseline(text: str):
    from ..errors import InputError

    if text in ("mean", "blur"):
        return text
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--baseline must be a number, 'mean' or 'blur', not {text!r}.") from None


def print_ground_truth(comparison, args: argparse.Namespace) -> None:
    """The ground-truth report: methods beside the oracle and chance, then as fractions of the ceiling."""
    from .groundtruth_report import markdown_table

    labels = "every non-zero label" if args.ground_truth_labels is None else f"label(s) {args.ground_truth_labels}"
    domain = "inside the brain masks" if args.brain_masks else "on the whole grid (no --brain-masks)"
    chance = comparison.table.loc["chance", "mass_accuracy"]
    print(f"\nGround truth ({labels}; scored {domain}; the mask is {chance:.3f} of that domain, which is the "
          f"chance level of mass and rank accuracy; mean ± sd over {len(args.subjects)} subject(s)):")
    print(markdown_table(comparison.table, comparison.sd))
    sigma = 1.0 if 1.0 in args.oracle_sigmas else args.oracle_sigmas[0]
    print(f"\nAs a fraction of the oracle at σ = {sigma:g} voxel(s):")
    print(markdown_table(comparison.fraction_of_ceiling(sigma)))


def _check_before_work(args: argparse.Namespace) -> None:
    """Refuse what can be refused before the model runs: preset, baseline, mask counts, outputs."""
    from ..engine.presets import PRESETS
    from ..errors import InputError

    if args.preset is not None and args.preset not in PRESETS:
        raise InputError(f"--preset {args.preset!r} is not a preset; use one of {', '.join(PRESETS)} "
                         "(or leave it out for the card's recommended preset).")
    from ..explanation.keywords import check_lrp_options

    check_lrp_options(args.methods, {"preset": args.preset})
    _check_effect(args)
    _baseline(args.baseline)
    for option, paths in (("--ground-truth", args.ground_truth), ("--brain-masks", args.brain_masks),
                          ("--twins", args.twins)):
        if paths is not None and len(paths) != len(args.subjects):
            raise InputError(f"{option}: {len(paths)} mask(s) for {len(args.subjects)} subject(s); give one "
                             "per subject, in the same order.")
    outputs = {"--csv": args.csv, "--per-subject-csv": args.per_subject_csv, "--png": args.png}
    spare_inputs({"subject scan": args.subjects, "--model": model_files(args.model),
                  "--ground-truth": args.ground_truth, "--brain-masks": args.brain_masks,
                  "--twins": args.twins}, files=outputs)
    for option, path in outputs.items():
        check_output_file(path, option)
    if args.atlas is not None:
        from ..regions.statistics import check_atlas_name

        check_atlas_name(args.atlas)


def _check_effect(args: argparse.Namespace) -> None:
    """Refuse an option that would change nothing: ``--layer`` without a Grad-CAM method (it would not even be
    checked), and what only the ground-truth report uses (labels, twins, atlas, oracle blurs) without
    ``--ground-truth``."""
    from ..explanation.dispatch import canonical
    from ..vocabulary import OptionError

    methods = [canonical(m) for m in args.methods]
    if args.layer is not None and not any(m in _CAM for m in methods):
        raise OptionError(("layer", args.layer, "--layer"), f" has no effect with the methods {', '.join(methods)}: "
                          f"only the Grad-CAM family ({', '.join(_CAM)}) reads a layer; leave it out, or add one of "
                          "them to ", ("methods", None, "--methods"), ".")
    if args.ground_truth is not None:
        return
    for name, value in (("ground_truth_labels", args.ground_truth_labels), ("twins", args.twins),
                        ("atlas", args.atlas),
                        ("oracle_sigmas", None if args.oracle_sigmas == list(ORACLE_SIGMAS) else args.oracle_sigmas)):
        if value is not None:
            flag = "--" + name.replace("_", "-")
            raise OptionError((name, value, flag), " has no effect without ", ("ground_truth", None, "--ground-truth"),
                              " (only the ground-truth report uses it); give the label maps, or leave it out.")


def _class_target(text: str | None, card) -> int | None:
    """``--target``: a class index, or a class name of the card (as ``explain`` takes it)."""
    from ..errors import InputError
    from ..jobs import resolve_target

    if text is None:
        return None
    text = str(text).strip()
    if text.lstrip("-").isdigit():
        if int(text) < 0:
            raise InputError(f"--target {text}: give a class index ≥ 0 or a class name.")
        return int(text)
    try:
        return resolve_target(text, card)
    except InputError as exc:
        raise InputError(f"--target {text}: {exc}") from None


def run_compare(args: argparse.Namespace) -> int:
    """Run for parsed ``args``; InputError propagates to the caller (the main CLI prints it)."""
    import pandas as pd
    import torch

    from ..errors import InputError
    from ..nifti import read_nifti
    from ..preprocessing import box_bounds, prepare_input
    from ..scan_kind import scan_notes
    from . import compare_methods, plot_curves
    from .truth_inputs import atlas_maps, change_maps, label_masks

    _check_before_work(args)
    device_argument(args.device)
    loaded = load_model_argument(args.model, device=args.device)
    if loaded.card is None:
        raise InputError("compare needs a model card (.json) that gives the input grid and normalisation; write a "
                         "card for this model (see docs/models) and pass it with --model.")
    if args.layer is not None:   # before the subjects are read and explained
        from ..methods.layers import check_layer_name

        check_layer_name(loaded.model, args.layer)
    outputs = loaded.out_features or len(loaded.card.output.classes)
    args.target = _class_target(args.target, loaded.card)
    if args.target is not None and outputs and args.target >= outputs:
        raise InputError(f"--target {args.target}: the model has {outputs} outputs; give an index from 0 to "
                         f"{outputs - 1}, or leave --target out to explain the predicted class.")
    inputs, names = [], []
    for subject in args.subjects:
        paths = [p.strip() for p in subject.split(",")]
        channels = [read_nifti(p, dtype="float32", scan=True) for p in paths]
        for note in scan_notes(channels, [Path(p).name for p in paths]):  # as explain: the run goes on
            print(f"note: {note}", file=sys.stderr)
        inputs.append(prepare_input(channels, loaded.card))
        names.append(Path(subject.split(",")[0]).name.split(".")[0])
    xs = [torch.from_numpy(mi.array)[None] for mi in inputs]
    options: dict = {"lrp": {"preset": args.preset or loaded.card.recommended_preset}}
    if args.preset is None and "lrp" in args.methods:
        from ..panel import recommendation_details, recommendation_text

        print(f"LRP: {recommendation_text(loaded.card)}")
        for line in recommendation_details(loaded.card).splitlines():   # the technical version: nothing is lost
            print(f"     {line}")
    for m in _CAM:
        if args.layer:
            options[m] = {"layer": args.layer}
    truth = label_masks(args.ground_truth, inputs, args.ground_truth_labels, subjects=args.subjects)
    comparison = compare_methods(
        loaded.model, xs, args.methods, args.target, ground_truth=truth,
        brain_masks=label_masks(args.brain_masks, inputs, None, "--brain-masks", subjects=args.subjects),
        method_options=options,
        names=names, changes=change_maps(args.twins, args.subjects, inputs) if truth else None,
        atlases=atlas_maps(args.atlas, inputs) if truth else None, oracle_sigmas=tuple(args.oracle_sigmas),
        boxes=[box_bounds(mi.array[None], loaded.card.input.normalization, support=mi.support) for mi in inputs],
        perturbation={"steps": args.steps, "fraction": args.fraction, "patch": args.patch,
                      "baseline": _baseline(args.baseline), "random_repeats": args.random_repeats},
        inclusivity_options={"threshold_a": args.inclusivity_threshold}, device=args.device)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(comparison.table.to_string(float_format="%.4g"))
    if truth:
        print_ground_truth(comparison, args)
    for note in comparison.notes:
        print(f"note: {note}")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        comparison.table.to_csv(args.csv)
        print(f"table: {args.csv}")
    if args.per_subject_csv:
        Path(args.per_subject_csv).parent.mkdir(parents=True, exist_ok=True)
        comparison.per_subject.to_csv(args.per_subject_csv, index=False)
        print(f"per subject: {args.per_subject_csv}")
    if args.png:
        from ..provenance import card_caption

        plot_curves(comparison.curves, comparison.fractions, args.png,
                    title=f"{loaded.card.name}: region perturbation ({len(xs)} subjects)",
                    caption=[f"Methods {', '.join(args.methods)} · target "
                             f"{'predicted' if args.target is None else args.target}"]
                    + card_caption(loaded.card))
        print(f"curves: {args.png}")
    return 0
