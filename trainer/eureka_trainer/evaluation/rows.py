"""Reading JSON rows with their line numbers: JSONL, a JSON list, or a JSON object of rows.

Every error names the file, the line and (where it is about one) the field, and loses nothing:
the whole file is checked and every bad row is reported at once, not just the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DECODER = json.JSONDecoder()


class EvalDataError(ValueError):
    """Bad evaluation input; `str()` lists one `file:line: field: message` per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Row:
    """One JSON object of a file and where it starts (`file:line`)."""

    path: Path
    line: int
    data: dict[str, Any]
    key: str | None = None  # the object key when the file is a JSON object of rows

    def where(self, field: str | None = None) -> str:
        """`file:line` or `file:line: field 'name'` (as `eureka_trainer.data` names fields)."""
        place = f"{self.path}:{self.line}"
        return f"{place}: field {field!r}" if field else place


def read_rows(path: str | Path) -> list[Row]:
    """The objects of a `.jsonl` file (one per line; blank lines skipped), a JSON list of objects,
    or a JSON object whose values are objects (MM-EUREKA's result files: id -> row).

    Raises `EvalDataError` naming every line that is not a JSON object.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise EvalDataError([f"{file}: cannot read: {err}"]) from None
    start = _skip_space(text, 0)
    if file.suffix != ".jsonl" and (
        text.startswith("[", start) or (text.startswith("{", start) and _is_object_of_rows(text))
    ):
        return _read_json_document(file, text, start)
    return _read_jsonl(file, text)


def _read_jsonl(file: Path, text: str) -> list[Row]:
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{file}:{number}: not valid JSON: {err.msg} (column {err.colno})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{file}:{number}: expected a JSON object, got {type(data).__name__}")
            continue
        rows.append(Row(file, number, data))
    if problems:
        raise EvalDataError(problems)
    return rows


def _is_object_of_rows(text: str) -> bool:
    """True when the whole text is one JSON object whose values are all objects (id -> row);
    a single-line `{id, response}` file is JSONL."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return False
    return (
        isinstance(document, dict)
        and bool(document)
        and all(isinstance(v, dict) for v in document.values())
    )


def _read_json_document(file: Path, text: str, start: int) -> list[Row]:
    """Rows of a JSON list (or object of rows), each with the line its value starts on."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise EvalDataError([f"{file}:{err.lineno}: not valid JSON: {err.msg}"]) from None
    lines = _value_lines(text, start)
    items: list[tuple[str | None, Any]] = (
        [(None, v) for v in document]
        if isinstance(document, list)
        else [(str(k), v) for k, v in document.items()]
    )
    rows, problems = [], []
    for (key, value), line in zip(items, lines, strict=True):
        if isinstance(value, dict):
            rows.append(Row(file, line, value, key))
        else:
            problems.append(f"{file}:{line}: expected a JSON object, got {type(value).__name__}")
    if problems:
        raise EvalDataError(problems)
    return rows


def _value_lines(text: str, start: int) -> list[int]:
    """1-based line of each top-level value of the JSON list or object opening at `start`."""
    lines: list[int] = []
    i = _skip_space(text, start + 1)
    is_object = text[start] == "{"
    while i < len(text) and text[i] not in "]}":
        if is_object:
            _, i = _DECODER.raw_decode(text, i)  # the key
            i = _skip_space(text, _skip_space(text, i) + 1)  # past ':'
        lines.append(text.count("\n", 0, i) + 1)
        _, i = _DECODER.raw_decode(text, i)
        i = _skip_space(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_space(text, i + 1)
    return lines


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def iter_field_problems(row: Row, required: dict[str, type | tuple[type, ...]]) -> Iterator[str]:
    """`file:line: field 'name': ...` for each required field missing or of the wrong type."""
    for name, kind in required.items():
        if name not in row.data or row.data[name] is None:
            yield f"{row.where(name)}: missing"
        elif not isinstance(row.data[name], kind):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            yield f"{row.where(name)}: expected {expected}, got {type(row.data[name]).__name__}"
