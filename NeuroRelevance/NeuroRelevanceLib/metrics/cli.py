"""``neurorelevance compare``: several methods on several subjects → one table method × metric and a PNG.

``register(subparsers)`` adds the sub-command; :func:`run_compare` does the work. Subjects are NIfTI files
(one per input channel, comma-separated, in the model card's channel order), brought into the model's input
space by ``preprocessing.prepare_input``; ground-truth and brain masks are resampled (nearest neighbour, in
physical space) onto the same model grid.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_checks import check_output_file, device_argument, load_model_argument, model_files, number, spare_inputs

_CAM = ("gradcam", "gradcam++", "guided_gradcam")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command; returns its parser (``func`` default set to run_compare)."""
    p = subparsers.add_parser(
        "compare", help="compare explanation methods on subjects: AOPC (region perturbation), mass/rank "
                        "accuracy and inclusivity against masks; CSV table + PNG of the curves")
    p.add_argument("subjects", nargs="+", help="one NIfTI per subject (several channels: comma-separated, in the "
                                               "card's channel order)")
    p.add_argument("--model", required=True, help="model card (.json) with its weights")
    p.add_argument("--methods", nargs="+", default=["lrp", "gradient_x_input", "integrated_gradients",
                                                     "guided_backprop", "gradcam++"],
                   help="methods to compare (default: %(default)s)")
    p.add_argument("--preset", default=None, help="LRP preset (default: the card's recommended preset)")
    p.add_argument("--layer", default=None, help="layer for the Grad-CAM family (default: last conv block)")
    p.add_argument("--target", type=number(0, integer=True), default=None,
                   help="class index to explain (default: predicted class)")
    p.add_argument("--ground-truth", nargs="+", default=None, help="one lesion/atrophy mask per subject")
    p.add_argument("--brain-masks", nargs="+", default=None, help="one brain mask per subject")
    p.add_argument("--steps", type=number(1, 10000, integer=True), default=20,
                   help="perturbation steps (default: %(default)s)")
    p.add_argument("--fraction", type=number(0.0, 1.0, low_open=True), default=0.5,
                   help="share of regions removed at the end (default: %(default)s)")
    p.add_argument("--patch", type=number(1, 64, integer=True), default=1,
                   help="cubic patch edge in voxels (default: %(default)s)")
    p.add_argument("--baseline", default="0", help="replacement: a number, 'mean' or 'blur' (default: %(default)s)")
    p.add_argument("--random-repeats", type=number(1, 1000, integer=True), default=1,
                   help="random orders averaged (default: %(default)s)")
    p.add_argument("--threshold", type=number(0.0, 1.0), default=0.1,
                   help="inclusivity: relevance kept where |R|/max|R| > this (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
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


def _masks(paths, model_inputs, option: str, subjects):
    """Each mask on its subject's model grid; an empty mask, or one lying outside the scan, is refused."""
    from ..errors import InputError
    from ..nifti import read_nifti
    from ..preprocessing import resample

    if paths is None:
        return None
    if len(paths) != len(model_inputs):
        raise InputError(f"{option}: {len(paths)} masks for {len(model_inputs)} subjects; give one per subject.")
    out = []
    for path, mi, subject in zip(paths, model_inputs, subjects):
        array, grid = read_nifti(path)
        inside = array > 0
        if not inside.any():
            raise InputError(f"{option} {path} is empty (no voxel above 0); give the mask of this subject.")
        mask = resample(inside.astype("float32"), grid, mi.grid, order="nearest") > 0.5
        if not mask.any():
            raise InputError(f"{option} {path} does not overlap the scan {subject}: none of its "
                             f"{int(inside.sum())} voxels falls inside the region the model sees. Check that the "
                             "mask is in the scan's space (saved with the scan's affine).")
        out.append(mask)
    return out


def _check_before_work(args: argparse.Namespace) -> None:
    """Refuse what can be refused before the model runs: preset, baseline, mask counts, outputs."""
    from ..engine.presets import PRESETS
    from ..errors import InputError

    if args.preset is not None and args.preset not in PRESETS:
        raise InputError(f"--preset {args.preset!r} is not a preset; use one of {', '.join(PRESETS)} "
                         "(or leave it out for the card's recommended preset).")
    _baseline(args.baseline)
    for option, paths in (("--ground-truth", args.ground_truth), ("--brain-masks", args.brain_masks)):
        if paths is not None and len(paths) != len(args.subjects):
            raise InputError(f"{option}: {len(paths)} mask(s) for {len(args.subjects)} subject(s); give one "
                             "per subject, in the same order.")
    outputs = {"--csv": args.csv, "--per-subject-csv": args.per_subject_csv, "--png": args.png}
    spare_inputs({"subject scan": args.subjects, "--model": model_files(args.model),
                  "--ground-truth": args.ground_truth, "--brain-masks": args.brain_masks}, files=outputs)
    for option, path in outputs.items():
        check_output_file(path, option)


def run_compare(args: argparse.Namespace) -> int:
    """Run for parsed ``args``; InputError propagates to the caller (the main CLI prints it)."""
    import pandas as pd
    import torch

    from ..errors import InputError
    from ..nifti import read_nifti
    from ..preprocessing import prepare_input
    from . import compare_methods, plot_curves

    _check_before_work(args)
    device_argument(args.device)
    loaded = load_model_argument(args.model, device=args.device)
    if loaded.card is None:
        raise InputError("compare needs a model card (.json) that gives the input grid and normalisation; write a "
                         "card for this model (see docs/models) and pass it with --model.")
    outputs = loaded.out_features or len(loaded.card.output.classes)
    if args.target is not None and outputs and args.target >= outputs:
        raise InputError(f"--target {args.target}: the model has {outputs} outputs; give an index from 0 to "
                         f"{outputs - 1}, or leave --target out to explain the predicted class.")
    inputs, names = [], []
    for subject in args.subjects:
        channels = [read_nifti(p.strip(), dtype="float32") for p in subject.split(",")]
        inputs.append(prepare_input(channels, loaded.card))
        names.append(Path(subject.split(",")[0]).name.split(".")[0])
    xs = [torch.from_numpy(mi.array)[None] for mi in inputs]
    options: dict = {"lrp": {"preset": args.preset or loaded.card.recommended_preset}}
    for m in _CAM:
        if args.layer:
            options[m] = {"layer": args.layer}
    ground_truth = _masks(args.ground_truth, inputs, "--ground-truth", args.subjects)
    brain_masks = _masks(args.brain_masks, inputs, "--brain-masks", args.subjects)
    comparison = compare_methods(
        loaded.model, xs, args.methods, args.target, ground_truth=ground_truth, brain_masks=brain_masks,
        method_options=options, names=names,
        perturbation={"steps": args.steps, "fraction": args.fraction, "patch": args.patch,
                      "baseline": _baseline(args.baseline), "random_repeats": args.random_repeats},
        inclusivity_options={"threshold_a": args.threshold}, device=args.device)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(comparison.table.to_string(float_format="%.4g"))
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
                    caption=[f"Methods {', '.join(args.methods)} · target {args.target or 'predicted'}"]
                    + card_caption(loaded.card))
        print(f"curves: {args.png}")
    return 0
