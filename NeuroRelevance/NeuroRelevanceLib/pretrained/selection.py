"""Choose among training runs of a demo model on its VALIDATION (or development) subjects, never on held-out ones.

Several training runs (same cohort and split; different training seeds, or recipe options such as the
intensity jitter) are scored with the evidence's own metric and rule (:func:`evidence.score_card` and
:func:`evidence.recommend`) on one split of the training cohort: ``"val"`` (the brain-age model) or
``"development"`` (validation and former test split: the AD model, whose preset is chosen there too): the
preset the rule picks there, and that preset's mean mass accuracy in the true mask over mean chance
(``fold``). The run with the highest ``fold`` is kept (ties: the lower validation error, i.e. MAE or
1 - accuracy, then the lower seed). The selection record names the candidates, their scores, the subjects
scored and the rule, and is written into the card's ``training.selection``. For the kept run only,
``benchmarks/bench_groundtruth.py --write-evidence`` then chooses the LRP preset on the development subjects
(validation and test split) and measures it, once, on the card's fresh held-out cohort
(``training.held_out_cohort``), which no choice has seen.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

RULE = ("score every candidate on the selection split of the training cohort (split: val, or development = "
        "validation and former test split) with the evidence's metric and rule (pretrained.evidence.recommend: "
        "mean mass accuracy of positive relevance in the true mask over mean chance, for the preset the rule "
        "picks, which never is a preset whose median conservation error exceeds evidence.MAX_CONSERVATION_ERROR "
        "unless none of the run's presets conserves; such a run ranks below every run whose preset conserves); "
        "keep the highest fold; ties: lower validation error (MAE, or 1 - accuracy), then lower seed. "
        "No subject outside that split (nor the fresh held-out cohort) is scored before the choice.")


def candidate_figures(table: Any, extra: dict) -> dict[str, Any]:
    """A candidate's figures from one set of scores (:func:`evidence.score_card`): the preset the evidence
    rule picks (with its conservation limit: a preset whose maps do not conserve is never the one scored, unless
    none of the run's presets conserves), its mass accuracy, chance, fold, weakest subject's fold and median
    conservation error."""
    from .evidence import recommend
    from .figures import kept

    preset, _ = recommend(table, extra)
    mass = float(table.loc[f"lrp:{preset}", "mass_accuracy"])
    chance = float(table.loc["chance", "mass_accuracy"])
    entry = extra[f"lrp:{preset}"]
    return {"preset": preset, "mass_accuracy": kept(mass), "chance": kept(chance),   # as evidence records keep them
            "fold": kept(mass / chance), "min_subject_fold": kept(entry["min_subject_fold"]),
            "conservation_error": kept(entry["conservation_error"])}


def validation_score(name: str, card_path: str | Path, *, min_age: float = 50.0, split: str = "val",
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One candidate's figures on ``split`` (:func:`candidate_figures`), the validation MAE or accuracy, its
    options and the indices of the subjects scored."""
    from .evidence import score_card
    from .heldout import card_json

    report, extra = score_card(name, card_path, min_age=min_age, split=split, other_methods=False, log=log)
    raw = card_json(card_path)
    return {"candidate": Path(card_path).parent.name, "train_seed": int(raw["training"]["seed"]),
            "options": raw["training"].get("options", {}), "epochs": raw["training"].get("epochs"),
            **candidate_figures(report.table, extra),
            "validation_mae": raw["metrics"].get("validation_mae"),
            "validation_accuracy": raw["metrics"].get("validation_accuracy"),
            "subjects": sorted(int(s.split("-")[-1]) for s in report.per_subject.subject.unique())}


def select(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept candidate by :data:`RULE`."""
    from .rule import conserves

    def error(s: dict[str, Any]) -> float:
        if s.get("validation_mae") is not None:
            return float(s["validation_mae"])
        return 1.0 - float(s.get("validation_accuracy") or 0.0)

    def conserving(s: dict[str, Any]) -> bool:   # older records carry no conservation error
        return conserves(float(s.get("conservation_error", 0.0)))

    return max(scores, key=lambda s: (conserving(s), s["fold"], -error(s), -s["train_seed"]))


def validation_recommendation(score: dict[str, Any], split: str = "val") -> dict[str, str]:
    """The kept run's ``recommended_preset`` and ``recommendation_reason`` from its score on ``split``, until
    ``benchmarks/bench_groundtruth.py --write-evidence`` replaces them with the held-out evidence."""
    words = "development" if split == "development" else "validation"
    reason = (f"{score['preset']}: {score['mass_accuracy']:.2f} of the positive relevance in the brain lies in the "
              f"true mask on the {words} subjects ({score['fold']:.1f}× chance {score['chance']:.3f}, "
              f"{score['min_subject_fold']:.1f}× on the weakest), no held-out figure yet; chosen on the "
              f"{words} subjects by the evidence rule")
    return {"recommended_preset": score["preset"], "recommendation_reason": reason}


def selection_record(name: str, scores: list[dict[str, Any]], ranges: dict[str, list[int]],
                     min_age: float, split: str = "val") -> dict[str, Any]:
    """What the card records: candidates with their scores on ``split``, the subjects, the rule, the choice.
    ``ranges``: the training card's ``split`` entry (index ranges of val and test)."""
    best = select(scores)
    subjects = scores[0]["subjects"]
    chosen_by = (f"controls aged >= {min_age:g}" if name == "brain_age_resnet" else "as the evidence selects them")
    parts = ("val", "test") if split == "development" else (split,)
    words = "development (validation and former test)" if split == "development" else "validation"
    return {"split": split, "val_range": list(ranges["val"]),
            "split_ranges": {k: list(ranges[k]) for k in parts}, "subjects": subjects,
            "subjects_note": (f"{words} subjects scored: " + chosen_by
                              + ", the same selection the evidence uses on its development and held-out "
                                "subjects"),
            "rule": RULE, "script": "scripts/select_demo_seed.py",
            "candidates": [{k: v for k, v in s.items() if k != "subjects"} for s in scores],
            "selected": best.get("candidate"), "selected_train_seed": best["train_seed"],
            "fold_spread": [min(s["fold"] for s in scores), max(s["fold"] for s in scores)]}


def select_candidate(name: str, candidates: list[str | Path], out_dir: str | Path, *, min_age: float = 50.0,
                     split: str = "val", log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Score each candidate folder's ``<name>.json`` on ``split``, copy the kept one's card and weights into
    ``out_dir`` with the selection record in ``training.selection`` and the rule's preset on ``split`` as its
    recommendation (:func:`keep`); return the record."""
    say = log or (lambda s: None)
    scores, folders = [], {}
    for folder in map(Path, candidates):
        if folder.name in folders:
            raise ValueError(f"two candidate folders are named {folder.name!r}: the name identifies a candidate")
        score = validation_score(name, folder / f"{name}.json", min_age=min_age, split=split)
        folders[folder.name] = folder
        scores.append(score)
        error = (f"validation MAE {score['validation_mae']}" if score["validation_mae"] is not None
                 else f"validation accuracy {score['validation_accuracy']}")
        say(f"  {folder.name} (seed {score['train_seed']}): {score['preset']} {score['mass_accuracy']:.3f} = "
            f"{score['fold']:.2f}x chance {score['chance']:.3f} (weakest {score['min_subject_fold']:.1f}x), "
            f"conservation error {score['conservation_error']:.2g}, {error}")
    record = keep(name, scores, folders, out_dir, min_age=min_age, split=split)
    say(f"kept {record['selected']} (seed {record['selected_train_seed']}) -> {Path(out_dir) / (name + '.json')}")
    return record


def keep(name: str, scores: list[dict[str, Any]], folders: dict[str, Path], out_dir: str | Path, *,
         min_age: float = 50.0, split: str = "val") -> dict[str, Any]:
    """Given each candidate's :func:`validation_score` (``folders``: candidate name -> folder), copy the kept
    one's card and weights into ``out_dir`` with the selection record in ``training.selection``."""
    from .cards import _HELD_OUT, _HELD_OUT_DEFAULT, _INTENDED_USE
    from .heldout import card_json

    if len({tuple(s["subjects"]) for s in scores}) != 1:
        raise ValueError(f"the candidates do not share their {split} subjects (different cohorts?)")
    record = selection_record(name, scores, card_json(folders[scores[0]["candidate"]] / f"{name}.json")
                              ["training"]["split"], min_age, split)
    chosen = Path(folders[record["selected"]])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chosen / f"{name}.safetensors", out / f"{name}.safetensors")
    card = card_json(chosen / f"{name}.json")
    card.update(_INTENDED_USE[name])   # the limitations as cards.py words them now (they cite the selection)
    card["metrics"]["held_out"] = _HELD_OUT.get(name, _HELD_OUT_DEFAULT)   # which choices the test split informed
    card["training"]["selection"] = record
    card.pop("evidence", None)         # evidence of another run, if any, never travels with these weights
    card.update(validation_recommendation(next(s for s in scores if s["candidate"] == record["selected"]), split))
    (out / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return record
