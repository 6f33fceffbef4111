"""Method × metric table on the synthetic demo cohort (AD-like subjects with known atrophy).

Generates ``--subjects`` AD-like subjects with ``demo.cohort.generate_cohort`` (NIfTI files in ``--out``),
then runs ``neurorelevance compare`` with the demo AD classifier card (``pretrained/ad_cnn.json``, or
``--model``), the atrophy maps as ground truth and the region label maps (> 0) as brain masks.

    python benchmarks/compare_demo.py --subjects 6 --out demo-compare
    python benchmarks/compare_demo.py --model my_card.json --methods lrp gradcam++ summary
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=6)
    p.add_argument("--out", default="demo-compare")
    p.add_argument("--model", default=None, help="model card (default: the demo AD classifier)")
    p.add_argument("--methods", nargs="+", default=["lrp", "gradient_x_input", "integrated_gradients",
                                                     "guided_backprop", "gradcam", "gradcam++", "summary"])
    p.add_argument("--spacing", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from NeuroRelevanceLib.demo.cohort import generate_cohort, load_cohort
    from NeuroRelevanceLib.metrics.cli import register

    model = args.model
    if model is None:
        from NeuroRelevanceLib.pretrained import available_models, model_card_path

        if "ad_cnn" not in available_models():
            print("The demo AD classifier is not built yet (scripts/train_demo_models.py); pass --model.")
            return 2
        model = str(model_card_path("ad_cnn"))
    out = Path(args.out)
    if not (out / "cohort" / "participants.csv").is_file():
        generate_cohort(out / "cohort", args.subjects, spacing=args.spacing, ad_fraction=1.0, overwrite=True)
    table = load_cohort(out / "cohort")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    cli = parser.parse_args(["compare", *table.image, "--model", model, "--methods", *args.methods,
                             "--ground-truth", *table.atrophy, "--brain-masks", *table.regions,
                             "--steps", str(args.steps), "--patch", str(args.patch), "--device", args.device,
                             "--csv", str(out / "methods_table.csv"), "--png", str(out / "curves.png"),
                             "--per-subject-csv", str(out / "per_subject.csv")])
    return cli.func(cli)


if __name__ == "__main__":
    sys.exit(main())
