"""The end of a batch run: ``subjects.csv`` (one row per subject), ``summary.json`` and the printed summary."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from ..atomic import write_text

STATUSES = ("done", "skipped", "failed")


def subjects_table(rows: list[dict]) -> pd.DataFrame:
    """One row per subject: identity, status and reason, timing, where it ran, and its files."""
    flat = []
    for row in rows:
        item = {k: v for k, v in row.items() if k not in ("files", "traceback", "covariates")}
        item.update(row.get("covariates", {}))
        item.update({k: str(v) for k, v in (row.get("files") or {}).items()})
        flat.append(item)
    table = pd.DataFrame(flat)
    first = ["id", "group", *[k for r in rows for k in r.get("covariates", {})], "status", "reason"]
    ordered = list(dict.fromkeys(c for c in first if c in table.columns))
    return table[ordered + [c for c in table.columns if c not in ordered]]


def write_summary(out: Path, table: pd.DataFrame, rows: list[dict], executor: str, options: dict,
                  notes: list[str], files: dict, seconds: float) -> dict:
    """Write ``subjects.csv`` and ``summary.json``; returns the summary."""
    counts = Counter(table["status"]) if len(table) else Counter()
    explained = counts["done"]
    summary = {
        "counts": {status: int(counts[status]) for status in STATUSES},
        "failed": [{"id": r["id"], "reason": r.get("reason", ""), **({"traceback": r["traceback"]}
                                                                    if r.get("traceback") else {})}
                   for r in rows if r.get("status") == "failed"],
        "notes": notes, "executor": executor, "seconds": round(seconds, 2),
        "subjects_per_minute": round(explained / seconds * 60.0, 2) if explained and seconds > 0 else None,
        "options": options, "files": {k: str(v) for k, v in files.items()},
    }
    write_text(out / "subjects.csv", table.to_csv(index=False, lineterminator="\n"))
    write_text(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    return summary


def summary_lines(summary: dict, out: Path | None, limit: int = 20, spelling: str = "keyword") -> list[str]:
    """The printed summary: counts, time, where it ran, every failure with its reason, notes, the folder;
    options named in reasons and notes as ``spelling`` says (``vocabulary.SPELLINGS``; the command line: flags)."""
    from ..vocabulary import spelled

    c = summary["counts"]
    total = sum(c.values())
    rate = f", {summary['subjects_per_minute']:.1f} subjects/min" if summary.get("subjects_per_minute") else ""
    lines = [f"{total} subjects: {c['done']} done, {c['skipped']} already complete (skipped), {c['failed']} failed "
             f"in {summary['seconds']:.1f} s{rate} · {summary['executor']}"]
    for failure in summary["failed"][:limit]:
        lines.append(f"  failed {failure['id']}: {spelled(failure['reason'], spelling)}")
    if len(summary["failed"]) > limit:
        lines.append(f"  ... and {len(summary['failed']) - limit} more (see subjects.csv)")
    lines += [f"  note: {spelled(note, spelling)}" for note in summary["notes"]]
    if out is None:
        lines.append("nothing was written: no subject could be explained (the reasons are above)")
    else:
        lines.append(f"outputs in {Path(out).resolve()} (summary.json, subjects.csv, subjects/, cohort/)")
    return lines
