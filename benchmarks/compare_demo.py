"""Method × metric table on held-out AD-like demo subjects, each score beside the oracle and chance.

Writes the AD classifier's held-out subjects (from its card: split "held_out", the fresh cohort of
``training.held_out_cohort`` that no training run or preset choice has seen; AD-like ones only, the first
``--subjects`` of them) with ``demo.cohort.generate_cohort``: scan, atrophy labels, brain mask and the
AD-free twin (the same subject as a control). A folder written earlier is reused only if its
``cohort.json`` names the same cohort and subjects. Then runs
``neurorelevance compare`` with the card's recommended preset, the AD-like label only
(``--ground-truth-labels 1``), the brain masks as the scoring domain, the twins as the oracle (the true
change) and the Desikan-Killiany atlas for region precision.

    python benchmarks/compare_demo.py --subjects 6 --out demo-compare
    python benchmarks/compare_demo.py --model my_card.json --methods lrp gradcam++ summary
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: the card's subject selection scored here (pretrained.heldout.SPLITS)
SPLIT = "held_out"


def cohort_seed(card: Path) -> int:
    """The seed of the cohort :data:`SPLIT` is drawn from."""
    from NeuroRelevanceLib.pretrained.heldout import cohort_source

    return int(cohort_source(card, SPLIT)["seed"])


def write_held_out(card: Path, out: Path, n: int) -> object:
    """Write up to ``n`` AD-like subjects of ``card``'s split :data:`SPLIT` with twins and brain masks; the table."""
    from NeuroRelevanceLib.demo.cohort import DESCRIPTION, cohort_table, generate_cohort, load_cohort
    from NeuroRelevanceLib.pretrained.heldout import cohort_source, generator_options, held_out_indices

    source = cohort_source(card, SPLIT)
    size, seed = int(source["n_subjects"]), int(source["seed"])
    options = generator_options(card)
    table = cohort_table(size, seed=seed, age_range=options["params"].age_range)
    chosen = [i for i in held_out_indices(card, SPLIT) if table.diagnosis[i] == "AD"][:n]
    wanted = {"n_subjects": size, "seed": seed, "spacing_mm": float(options["spacing"]), "indices": chosen,
              "params": options["params"].as_dict(), "skull_strip": options["skull_strip"], "twins": "ad"}
    written = json.loads((out / DESCRIPTION).read_text()) if (out / DESCRIPTION).is_file() else {}
    if not (out / "participants.csv").is_file() or json.loads(json.dumps(wanted)) != {
            k: written.get(k) for k in wanted}:
        generate_cohort(out, size, spacing=options["spacing"], seed=seed, params=options["params"],
                        skull_strip=options["skull_strip"], indices=chosen, twins="ad", overwrite=True)
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
    print(f"split {SPLIT!r} of {Path(model).name}: {len(table)} AD-like subjects of the cohort of seed "
          f"{cohort_seed(Path(model))}: {', '.join(table.subject_id)}")
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
