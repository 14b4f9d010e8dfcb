"""Evaluation output: per-sample JSONL, `summary.json`, `predictions.jsonl`, and a printed table.

`predictions.jsonl` is in the re-scoring format (`{id, responses}`), so any evaluation can be
re-scored later (another template, a fixed gold answer) without the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eureka_trainer.evaluation.metrics import ScoredRecord

SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.jsonl"


def write_outputs(
    output: str | Path, records: Sequence[ScoredRecord], summary: Mapping[str, Any]
) -> Path:
    """Write the three files under `output` (created); each is replaced atomically. Its path."""
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / SAMPLES_FILE, "".join(_line(r.to_json()) for r in records))
    _write(
        folder / PREDICTIONS_FILE,
        "".join(_line({"id": r.id, "responses": r.responses}) for r in records),
    )
    _write(folder / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return folder


def _line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def format_table(summary: Mapping[str, Any]) -> str:
    """The summary as an aligned text table: one row overall, one per group value."""
    rows = [("all", summary)]
    for key, values in summary.get("groups", {}).items():
        rows += [(f"{key}={value}", block) for value, block in values.items()]
    extra = [k for k in summary if k.startswith(("pass@", "maj@"))]
    header = ["group", "records", "accuracy", *extra]
    body = [
        [name, str(block["count"]), _pct(block["accuracy"]), *(_pct(block.get(k)) for k in extra)]
        for name, block in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [_aligned(header, widths), _aligned(["-" * w for w in widths], widths)]
    lines += [_aligned(r, widths) for r in body]
    lines += _notes(summary)
    return "\n".join(lines)


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    first = cells[0].ljust(widths[0])
    rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join([first, *rest])


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _notes(summary: Mapping[str, Any]) -> list[str]:
    notes = []
    if summary.get("invalid_gold"):
        ids = summary["invalid_gold"]
        notes.append(
            f"{len(ids)} record(s) with a gold answer math-verify cannot parse, left out: {_ids(ids)}"
        )
    missing = summary.get("missing", {})
    if missing.get("predictions"):
        ids = missing["predictions"]
        notes.append(f"{len(ids)} id(s) in the data have no prediction, left out: {_ids(ids)}")
    if missing.get("data"):
        ids = missing["data"]
        notes.append(f"{len(ids)} predicted id(s) are not in the data, ignored: {_ids(ids)}")
    if summary.get("timeouts"):
        notes.append(f"{summary['timeouts']} response(s) hit the scoring timeout (scored 0)")
    return notes


def _ids(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")
