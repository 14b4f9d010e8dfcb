"""Reading rows with their line numbers; every bad row is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka_trainer.evaluation.rows import EvalDataError, read_rows


def test_jsonl_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text('{"id": 1}\n\n{"id": 2}\n', encoding="utf-8")
    assert [(r.line, r.data["id"]) for r in read_rows(f)] == [(1, 1), (3, 2)]


def test_json_list_rows_know_the_line_they_start_on(tmp_path: Path) -> None:
    f = tmp_path / "k12.json"
    f.write_text('[\n  {"id": 1,\n   "q": "[x]"},\n\n  {"id": 2}\n]\n', encoding="utf-8")
    assert [(r.line, r.data["id"]) for r in read_rows(f)] == [(2, 1), (5, 2)]


def test_json_object_of_rows_mm_eureka_results(tmp_path: Path) -> None:
    f = tmp_path / "res.json"
    f.write_text('{\n "7": {"response": "a"},\n "8": {"response": "b"}\n}', encoding="utf-8")
    rows = read_rows(f)
    assert [(r.key, r.line) for r in rows] == [("7", 2), ("8", 3)]


def test_a_one_line_jsonl_file_is_not_mistaken_for_an_object_of_rows(tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    f.write_text('{"id": 1, "response": "x"}\n', encoding="utf-8")
    rows = read_rows(f)
    assert len(rows) == 1 and rows[0].data["id"] == 1


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": 1}\n{"id": \n[1, 2]\n{"id": 4}\n', encoding="utf-8")
    with pytest.raises(EvalDataError) as err:
        read_rows(f)
    assert [p.split(": ")[0] for p in err.value.problems] == [f"{f}:2", f"{f}:3"]
    assert "expected a JSON object, got list" in err.value.problems[1]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match=r"nope\.jsonl: cannot read"):
        read_rows(tmp_path / "nope.jsonl")
