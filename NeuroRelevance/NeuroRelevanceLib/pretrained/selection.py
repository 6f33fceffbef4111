"""Choose among training runs of a demo model on its VALIDATION subjects, never on the test subjects.

Several training runs of one recipe (same cohort and split, different training seeds) are scored
with the evidence's own metric and rule (:func:`evidence.score_card` with ``split="val"`` and
:func:`evidence.recommend`): the preset the rule picks on the validation subjects, and that preset's
mean mass accuracy in the true mask over mean chance (``fold``). The run with the highest ``fold``
is kept (ties: the lower validation MAE, then the lower seed). The selection record names the
candidates, their validation scores, the subjects scored and the rule, and is written into the
card's ``training.selection``. For the kept run only, ``benchmarks/bench_groundtruth.py --write-evidence``
then chooses the LRP preset on the development subjects (validation and test split) and measures it,
once, on the card's fresh held-out cohort (``training.held_out_cohort``), which no choice has seen.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

RULE = ("score every candidate on the validation subjects with the evidence's metric and rule "
        "(pretrained.evidence.recommend: mean mass accuracy of positive relevance in the true mask over "
        "mean chance, for the preset the rule picks); keep the highest fold; ties: lower validation MAE, "
        "then lower seed. The test subjects are not scored before the choice.")


def validation_score(name: str, card_path: str | Path, *, min_age: float = 50.0,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One candidate's validation figures: the rule's preset, its mass accuracy, chance, fold,
    weakest subject's fold, the validation MAE and the indices of the subjects scored."""
    from .evidence import recommend, score_card
    from .heldout import card_json

    report, extra = score_card(name, card_path, min_age=min_age, split="val", other_methods=False, log=log)
    preset, _ = recommend(report.table, extra)
    mass = float(report.table.loc[f"lrp:{preset}", "mass_accuracy"])
    chance = float(report.table.loc["chance", "mass_accuracy"])
    raw = card_json(card_path)
    return {"train_seed": int(raw["training"]["seed"]), "preset": preset, "mass_accuracy": round(mass, 4),
            "chance": round(chance, 4), "fold": round(mass / chance, 3),
            "min_subject_fold": round(float(extra[f"lrp:{preset}"]["min_subject_fold"]), 3),
            "validation_mae": raw["metrics"].get("validation_mae"),
            "subjects": sorted(int(s.split("-")[-1]) for s in report.per_subject.subject.unique())}


def select(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept candidate by :data:`RULE`."""
    return max(scores, key=lambda s: (s["fold"], -(s["validation_mae"] or 0.0), -s["train_seed"]))


def validation_recommendation(score: dict[str, Any]) -> dict[str, str]:
    """The kept run's ``recommended_preset`` and ``recommendation_reason`` from its validation score, until
    ``benchmarks/bench_groundtruth.py --write-evidence`` replaces them with the held-out evidence."""
    reason = (f"{score['preset']}: {score['mass_accuracy']:.2f} of the positive relevance in the brain lies in the "
              f"true mask on the validation subjects ({score['fold']:.1f}× chance {score['chance']:.3f}, "
              f"{score['min_subject_fold']:.1f}× on the weakest), no held-out figure yet; chosen on the "
              "validation subjects by the evidence rule")
    return {"recommended_preset": score["preset"], "recommendation_reason": reason}


def selection_record(name: str, scores: list[dict[str, Any]], val_range: list[int],
                     min_age: float) -> dict[str, Any]:
    """What the card records: candidates with their validation scores, the subjects, the rule, the choice."""
    best = select(scores)
    subjects = scores[0]["subjects"]
    chosen_by = (f"controls aged >= {min_age:g}" if name == "brain_age_resnet" else "as the evidence selects them")
    return {"split": "val", "val_range": list(val_range), "subjects": subjects,
            "subjects_note": ("validation subjects scored: " + chosen_by
                              + ", the same selection the evidence uses on its development and held-out "
                                "subjects"),
            "rule": RULE, "script": "scripts/select_demo_seed.py",
            "candidates": [{k: v for k, v in s.items() if k != "subjects"} for s in scores],
            "selected_train_seed": best["train_seed"],
            "fold_spread": [min(s["fold"] for s in scores), max(s["fold"] for s in scores)]}


def select_candidate(name: str, candidates: list[str | Path], out_dir: str | Path, *, min_age: float = 50.0,
                     log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Score each candidate folder's ``<name>.json`` on validation, copy the kept one's card and
    weights into ``out_dir`` with the selection record in ``training.selection`` and the validation rule's preset
    as its recommendation (:func:`validation_recommendation`); return the record."""
    from .cards import _INTENDED_USE
    from .heldout import card_json

    say = log or (lambda s: None)
    scores, folders = [], {}
    for folder in map(Path, candidates):
        score = validation_score(name, folder / f"{name}.json", min_age=min_age)
        folders[score["train_seed"]] = folder
        scores.append(score)
        say(f"  seed {score['train_seed']}: {score['preset']} {score['mass_accuracy']:.3f} = "
            f"{score['fold']:.1f}x chance {score['chance']:.3f} (weakest {score['min_subject_fold']:.1f}x), "
            f"validation MAE {score['validation_mae']}")
    if len({tuple(s["subjects"]) for s in scores}) != 1:
        raise ValueError("the candidates do not share their validation subjects (different cohorts?)")
    record = selection_record(name, scores, card_json(folders[scores[0]["train_seed"]] / f"{name}.json")
                              ["training"]["split"]["val"], min_age)
    chosen = folders[record["selected_train_seed"]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chosen / f"{name}.safetensors", out / f"{name}.safetensors")
    card = card_json(chosen / f"{name}.json")
    card.update(_INTENDED_USE[name])   # the limitations as cards.py words them now (they cite the selection)
    card["training"]["selection"] = record
    card.pop("evidence", None)         # evidence of another run, if any, never travels with these weights
    card.update(validation_recommendation(next(s for s in scores if s["train_seed"] == record["selected_train_seed"])))
    (out / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    say(f"kept seed {record['selected_train_seed']} -> {out / (name + '.json')}")
    return record
