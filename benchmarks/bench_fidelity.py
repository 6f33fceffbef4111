#!/usr/bin/env python
"""The source papers' measurable claims, re-measured on the shipped demo models (docs/fidelity.md).

- seed 000 (Deep Taylor on a brain-age CNN): conservation of the deep-taylor preset (float32 with the
  default stabiliser, float64 with stabiliser 0) and positivity of the map, on ``ad_cnn``'s held-out
  AD-like subjects (the AD logit is positive there, as DTD requires);
- seed 001 (filters and inclusivity on a 3D U-Net): D(LRP_α, y) and D(LRP_α, x) for the raw map,
  pass and clamp filters at every layer (the paper's placement), beside the threshold-free mass in
  the lesion and AUC, on ``lesion_unet``'s held-out subjects;
- seed 002 (several methods agree): Spearman correlation inside the brain and overlap of the ten
  densest atlas regions between LRP, guided backprop and Grad-CAM++ on ``ad_cnn``;
- seed 004 (Böhle et al.): share of the five densest regions that are AD regions, inter-patient
  variability (correlation of AD-like subjects' maps), and relevance for AD in controls against
  AD-like subjects (α1β0 seeded with p(AD), as the paper).

Held-out subjects are the cards' split ``SPLIT`` = "held_out" (pretrained.heldout.SPLITS): the fresh
cohort of each card's ``training.held_out_cohort``, which no training run or preset choice has seen.

    .venv/bin/python benchmarks/bench_fidelity.py [--max-subjects 8] [--models-dir DIR]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

FILTERS = [("raw", None, (0.0, 1.0)), ("pass", "pass", (0.0, 0.05)), ("pass", "pass", (0.0, 0.2)),
           ("pass", "pass", (0.0, 0.4)), ("pass", "pass", (0.05, 1.0)), ("pass", "pass", (0.2, 1.0)),
           ("clamp", "clamp", (0.0, 0.05)), ("clamp", "clamp", (0.0, 0.2)), ("clamp", "clamp", (0.0, 0.4))]
#: the cards' subject selection every figure is measured on (pretrained.heldout.SPLITS): the fresh cohort
#: of ``training.held_out_cohort``, which no training run or preset choice has seen
SPLIT = "held_out"


def card(args, name: str) -> Path:
    from NeuroRelevanceLib.pretrained import model_card_path

    return (args.models_dir / f"{name}.json") if args.models_dir else model_card_path(name)


def seed_000(args) -> None:
    """Conservation and positivity of deep-taylor on the seed-000 architecture, with the product's
    per-voxel zB box (masked zeros pinned) and with the input's range as the box."""
    from NeuroRelevanceLib.engine import explain
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.preprocessing import box_keywords
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    path = card(args, "ad_cnn")
    loaded = load_model(path, device="cpu")
    rows = []
    subjects = held_out_subjects(path, split=SPLIT, diagnosis="AD", truth="ad")
    for s in itertools.islice(subjects, args.max_subjects):
        x = torch.from_numpy(s.x[None])
        zb = box_keywords(s.x[None], loaded.card.input.normalization, support=s.support)   # as the product (jobs.py)
        row = []
        for low, high in ((zb["low"], zb["high"]), (0.0, 1.0)):
            e32 = explain(loaded.model, x, preset="deep-taylor", target=1, low=low, high=high, device="cpu")
            e64 = explain(loaded.model, x, preset="deep-taylor", target=1, low=low, high=high, device="cpu",
                          dtype=torch.float64, stabilizer=0.0)
            r = e32.relevance
            row += [e32.max_conservation_error, e64.max_conservation_error,
                    float(r.clamp(max=0).abs().sum() / r.abs().sum()),
                    float(r[0, 0][torch.from_numpy(~s.brain)].clamp(min=0).sum() / r.clamp(min=0).sum())]
        rows.append(row + [float(e32.target_value[0])])
    a = np.array(rows)
    print(f"\n## seed 000: deep-taylor on ad_cnn, {len(a)} held-out AD-like subjects "
          f"of split {SPLIT!r} (AD logit {a[:, -1].mean():.2f})\n")
    print("| figure | per-voxel box (product) | input range [0, 1] as box |\n|---|---|---|")
    for i, what in enumerate(("conservation error, float32, stabiliser 1e-6 (median; max)",
                              "conservation error, float64, stabiliser 0 (median; max)",
                              "negative share of Σ|R| (positivity: 0; median; max)",
                              "share of R⁺ outside the brain (median; max)")):
        print(f"| {what} | {np.median(a[:, i]):.2e}; {a[:, i].max():.2e} | "
              f"{np.median(a[:, 4 + i]):.2e}; {a[:, 4 + i].max():.2e} |")


def seed_001(args) -> None:
    """Inclusivity of filtered LRP on the lesion U-Net, beside mass in the lesion and AUC."""
    from NeuroRelevanceLib.engine import explain
    from NeuroRelevanceLib.metrics import inclusivity
    from NeuroRelevanceLib.metrics.groundtruth import GroundTruth
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    path = card(args, "lesion_unet")
    loaded = load_model(path, device="cpu")
    recommended = loaded.card.recommended_preset
    for preset in (recommended, "epsilon-plus" if recommended != "epsilon-plus" else "epsilon"):
        table = {f"{n} {r}": [] for n, _, r in FILTERS}
        for s in itertools.islice(held_out_subjects(path, split=SPLIT, truth="all"), args.max_subjects):
            x = torch.from_numpy(s.x[None])
            lesion = s.labels > 0
            with torch.no_grad():
                predicted = loaded.model(x).argmax(1)[0] == 1   # explain the lesion the model finds
            truth = GroundTruth(lesion, brain=s.brain)
            for name, kind, rng in FILTERS:
                e = explain(loaded.model, x, preset=preset, target=1, mask=predicted,
                            filter=kind, filter_range=rng, filter_placement="every-layer", device="cpu")
                r = e.relevance[0].sum(0).numpy()
                sc = truth.score(r) if np.abs(r).max() > 0 else {"mass_accuracy": np.nan, "auc_brain": np.nan}
                table[f"{name} {rng}"].append((inclusivity(r, lesion) if r.any() else 0.0,
                                               inclusivity(r, s.brain) if r.any() else 0.0,
                                               sc["mass_accuracy"], sc["auc_brain"]))
        n = len(next(iter(table.values())))
        chance = lesion[s.brain].mean()
        print(f"\n## seed 001: lesion_unet, LRP {preset}, filters at every layer, "
              f"{n} subjects of split {SPLIT!r} (lesion ≈ {chance:.3f} of the brain in the last one)\n")
        print("| filter | D(R, y) lesion | D(R, x) brain | mass in lesion | AUC in brain |\n|---|---|---|---|---|")
        for key, values in table.items():
            v = np.nanmean(np.array(values, dtype=float), axis=0)
            print(f"| {key} | {v[0]:.3f} | {v[1]:.3f} | {v[2]:.3f} | {v[3]:.3f} |")


def ad_maps(args, diagnosis: str, methods: list[str]):
    """Maps of ``methods`` on ``ad_cnn``'s held-out subjects of one diagnosis, with atlas and brain."""
    from NeuroRelevanceLib.explanation.dispatch import explain
    from NeuroRelevanceLib.models import load_model
    from NeuroRelevanceLib.preprocessing import box_keywords
    from NeuroRelevanceLib.pretrained.heldout import held_out_subjects

    path = card(args, "ad_cnn")
    loaded = load_model(path, device="cpu")
    preset = loaded.card.recommended_preset
    out = []
    subjects = held_out_subjects(path, split=SPLIT, diagnosis=diagnosis, truth="all")
    for s in itertools.islice(subjects, args.max_subjects):
        x = torch.from_numpy(s.x[None])
        zb = box_keywords(s.x[None], loaded.card.input.normalization, support=s.support)   # as the product (jobs.py)
        maps = {}
        for m in methods:
            lrp = {"preset": preset, **zb} if m == "lrp" else {}
            e = explain(loaded.model, x, m, target=1, device="cpu", **lrp)
            maps[m] = e.relevance[0].sum(0).double().numpy()
            if m == "lrp":
                logit = float(e.output[0, 1])
                p_ad = float(torch.softmax(e.output[0], 0)[1])
        out.append({"maps": maps, "brain": s.brain, "atlas": s.atlas, "labels": s.labels, "logit": logit,
                    "p_ad": p_ad})
    return out, preset


def densities(r: np.ndarray, atlas: np.ndarray, brain: np.ndarray) -> dict[int, float]:
    lab = atlas[brain]
    v = r[brain]
    return {int(i): float(v[lab == i].mean()) for i in np.unique(lab) if i > 0}


def seed_002_004(args) -> None:
    """Agreement of methods (002); AD regions, variability, controls (004)."""
    from NeuroRelevanceLib.demo.anatomy import AD_REGIONS, load_anatomy

    anat = load_anatomy("desikan-killiany")
    ad_ids = set(anat.region_ids(AD_REGIONS["desikan-killiany"]))
    methods = ["lrp", "guided_backprop", "gradcam++"]
    ad, preset = ad_maps(args, "AD", methods)
    print(f"\n## seed 002: agreement of LRP ({preset}), guided backprop and Grad-CAM++ on ad_cnn, {len(ad)} "
          f"AD-like subjects of split {SPLIT!r}\n")
    print("| pair | Spearman r in the brain | shared of the 10 densest regions |\n|---|---|---|")
    for a, b in itertools.combinations(methods, 2):
        rho, shared = [], []
        for s in ad:
            rho.append(stats.spearmanr(s["maps"][a][s["brain"]], s["maps"][b][s["brain"]]).statistic)
            da, db = (densities(s["maps"][m], s["atlas"], s["brain"]) for m in (a, b))
            top = [set(sorted(d, key=d.get, reverse=True)[:10]) for d in (da, db)]
            shared.append(len(top[0] & top[1]) / 10)
        print(f"| {a} – {b} | {np.mean(rho):.2f} ± {np.std(rho):.2f} | {np.mean(shared):.2f} |")
    top5 = [len(set(sorted(d, key=d.get, reverse=True)[:5]) & ad_ids) / 5
            for d in (densities(s["maps"]["lrp"], s["atlas"], s["brain"]) for s in ad)]
    common = np.logical_and.reduce([s["brain"] for s in ad])   # template space: compare voxel by voxel
    flat = np.array([s["maps"]["lrp"][common] for s in ad])
    pairs = [stats.pearsonr(flat[i], flat[j]).statistic for i, j in itertools.combinations(range(len(ad)), 2)]
    controls, _ = ad_maps(args, "control", ["lrp"])

    def seeded_positive(s: dict) -> float:  # α1β0 is linear in the seed: rescale from the logit to p(AD)
        return float(np.clip(s["maps"]["lrp"] * s["p_ad"] / s["logit"], 0, None).sum())

    ad_pos, ctrl_pos = np.mean([seeded_positive(s) for s in ad]), np.mean([seeded_positive(s) for s in controls])
    share = len(ad_ids) / len(densities(ad[0]["maps"]["lrp"], ad[0]["atlas"], ad[0]["brain"]))
    print(f"\n## seed 004: LRP ({preset}) on ad_cnn, {len(ad)} AD-like and {len(controls)} control subjects "
          f"of split {SPLIT!r}\n")
    print("| figure | value |\n|---|---|")
    print(f"| AD regions among the 5 densest regions (chance {share:.2f}) | {np.mean(top5):.2f} |")
    print(f"| correlation of two AD-like subjects' maps (inter-patient variability: < 1) | "
          f"{np.mean(pairs):.2f} ± {np.std(pairs):.2f} |")
    print(f"| Σ R⁺ for AD (seeded with p(AD)), controls / AD-like | {ctrl_pos / ad_pos:.3f} |")
    print(f"| p(AD) controls / AD-like | {np.mean([s['p_ad'] for s in controls]):.3f} / "
          f"{np.mean([s['p_ad'] for s in ad]):.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="cards folder (default: the shipped models)")
    parser.add_argument("--max-subjects", type=int, default=8)
    parser.add_argument("--seeds", nargs="+", default=["000", "001", "002-004"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    for seed, run in (("000", seed_000), ("001", seed_001), ("002-004", seed_002_004)):
        if seed in args.seeds:
            run(args)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
