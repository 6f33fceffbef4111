"""A cohort table's caption (gain CSV header) has no subject's prediction: no empty "Prediction:  ·" line."""
from NeuroRelevanceLib.batch.group import cohort_record
from NeuroRelevanceLib.provenance import caption_lines


def _record(**extra):
    return {"label": "LRP epsilon-plus", "target": {"label": "AD", "index": 1}, "filter": {"type": None},
            "model": {"name": "m", "intended_use": "tests", "limitations": "none"},
            "grid": {"scan": {"shape_kji": [4, 5, 6], "spacing_mm": [2.0, 2.0, 2.0]}},
            "software": "NeuroRelevance 0", "prediction": "AD (p = 0.91)", **extra}


def test_a_subject_caption_names_its_prediction():
    lines = caption_lines(_record())
    assert lines[1].startswith("Prediction: AD (p = 0.91) · scan grid 6×5×4 at 2×2×2 mm")


def test_a_cohort_caption_has_no_empty_prediction():
    record = cohort_record(_record())
    assert "prediction" not in record
    lines = caption_lines(record)
    assert not any("Prediction:" in line for line in lines), lines
    assert not any("  ·" in line or line.startswith(" ·") for line in lines), lines
    assert "scan grid 6×5×4 at 2×2×2 mm" in lines[1]
