"""Method × metric table on held-out AD-like demo subjects, each score beside the oracle and chance.

Writes the AD classifier's held-out test subjects (from its card: the test split of its training
cohort, AD-like ones only, ``--subjects`` of them) with ``demo.cohort.generate_cohort``: scan, atrophy
labels, brain mask and the AD-free twin (the same subject as a control). Then runs
``neurorelevance compare`` with the card's recommended preset, the AD-like label only
(``--ground-truth-labels 1``), the brain masks as the scoring domain, the twins as the oracle (the true
change) and the Desikan-Killiany atlas for region precision.

    python benchmarks/compare_demo.py --subjects 6 --out demo-compare
    python benchmarks/compare_demo.py --model my_card.json --methods lrp gradcam++ summary
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_held_out(card: Path, out: Path, n: int) -> object:
    """Write up to ``n`` held-out AD-like subjects of ``card`` with twins and brain masks; the table."""
    from NeuroRelevanceLib.demo.cohort import cohort_table, generate_cohort, load_cohort
    from NeuroRelevanceLib.pretrained.heldout import card_json, generator_options, held_out_indices

    source = card_json(card)["training"]["cohort"]
    options = generator_options(card)
    table = cohort_table(int(source["n_subjects"]), seed=options["seed"])
    chosen = [i for i in held_out_indices(card) if table.diagnosis[i] == "AD"][:n]
    if not (out / "participants.csv").is_file():
        generate_cohort(out, int(source["n_subjects"]), spacing=options["spacing"], seed=options["seed"],
                        params=options["params"], skull_strip=options["skull_strip"], indices=chosen,
                        twins="ad", overwrite=True)
    return load_cohort(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=6, help="held-out AD-like subjects (default: %(default)s)")
    p.add_argument("--out", default="demo-compare")
    p.add_argument("--model", default=None, help="demo model card (default: the bundled AD classifier)")
    p.add_argument("--methods", nargs="+", default=["lrp", "gradient_x_input", "integrated_gradients",
                                                     "guided_backprop", "gradcam", "gradcam++", "summary"])
    p.add_argument("--atlas", default="DesikanKilliany")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from NeuroRelevanceLib.metrics.cli import register

    model = args.model
    if model is None:
        from NeuroRelevanceLib.pretrained import available_models, model_card_path

        if "ad_cnn" not in available_models():
            print("The demo AD classifier is not built yet (scripts/train_demo_models.py); pass --model.")
            return 2
        model = str(model_card_path("ad_cnn"))
    out = Path(args.out)
    table = write_held_out(Path(model), out / "cohort", args.subjects)
    print(f"held-out AD-like subjects of {Path(model).name}: {', '.join(table.subject_id)}")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    cli = parser.parse_args(["compare", *table.image, "--model", model, "--methods", *args.methods,
                             "--target", "1", "--ground-truth", *table.atrophy, "--ground-truth-labels", "1",
                             "--brain-masks", *table.brain, "--twins", *table.twin, "--atlas", args.atlas,
                             "--steps", str(args.steps), "--patch", str(args.patch), "--device", args.device,
                             "--csv", str(out / "methods_table.csv"), "--png", str(out / "curves.png"),
                             "--per-subject-csv", str(out / "per_subject.csv")])
    return cli.func(cli)


if __name__ == "__main__":
    sys.exit(main())
