"""Following JSONL files while they are written: partial lines, bad lines, rewrites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eureka_service.jsonl import JsonlTail


def _tail(path: Path) -> tuple[JsonlTail, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    return JsonlTail(path, records.append, records.clear), records


def test_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail, records = _tail(path)
    assert tail.poll() == 0  # no file yet
    path.write_text('{"step": 1}\n{"step": 2, "reward/to')
    assert tail.poll() == 1 and records == [{"step": 1}]
    with path.open("a") as out:
        out.write('tal": 0.5}\n')
    assert tail.poll() == 1 and records[-1] == {"step": 2, "reward/total": 0.5}
    assert tail.poll() == 0 and tail.bad_lines == 0


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"step": 1}\nnot json\n[1, 2]\n\n{"step": 2}\n')
    tail, records = _tail(path)
    assert tail.poll() == 2
    assert [r["step"] for r in records] == [1, 2]
    assert tail.bad_lines == 2


def test_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n')
    tail, records = _tail(path)
    tail.poll()
    path.write_text('{"step": 9}\n')  # shorter: a new run wrote the file again
    tail.poll()
    assert records == [{"step": 9}]
    path.unlink()
    tail.poll()
    assert records == []
