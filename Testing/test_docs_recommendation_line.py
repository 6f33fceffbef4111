"""docs/pretrained.md says what the front ends show for a card's recommendation: the Slicer panel, the web viewer,
the demo and ``compare`` build a plain line from the card's structured ``evidence`` (``panel.recommendation_text``,
``NeuroRelevanceLib/recommendation.py``), with the technical version (``panel.recommendation_details``) as the
Slicer tooltip, the web viewer's title and the lines under ``compare``'s; they no longer show the card's free-text
``recommendation_reason`` as it is (it is part of the technical version)."""
from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "pretrained.md"
FRONT_ENDS = re.compile(r"panel|web viewer|\bdemo\b|`compare`")


def _blocks() -> list[str]:
    """Paragraphs and table rows of the page, each as one line."""
    blocks, current = [], []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("|"):
            blocks.append(" ".join(current))
            current = []
            if line.startswith("|"):
                blocks.append(line)
        else:
            current.append(line.strip())
    return [b for b in [*blocks, " ".join(current)] if b]


def test_passages_on_the_reason_and_the_front_ends_describe_the_line_built_from_the_evidence():
    passages = [b for b in _blocks() if "recommendation_reason" in b and FRONT_ENDS.search(b)]
    assert passages
    for passage in passages:
        assert "recommendation_text" in passage and "recommendation_details" in passage, passage
        assert "`evidence`" in passage and "tooltip" in passage and "title" in passage, passage
        assert not re.search(r"shown by the Slicer panel|show its first clause", passage), passage
