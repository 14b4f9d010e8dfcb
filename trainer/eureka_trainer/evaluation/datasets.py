"""Evaluation sets in MM-EUREKA's formats, read into gold answers and (for generation) prompts.

Formats, told apart per row:
- K12: `{id, question, answer, image_path?, subject?}` in a JSON list (MM-EUREKA's `k12.json`)
  or JSONL. `image_path` is relative to `image_root` (default: the data file's folder). The
  question is turned into chat messages by the chosen template (`templates.py`).
- The training formats: `{id, conversations, answer, image_urls?}` or `{id, message, answer}`;
  the conversation is kept as written.
Both are parsed by `eureka_trainer.data.records.parse_object` into the training `PromptRecord`
(the same message normalisation, image checks and family rules as training).
Every row may carry `subject` or `source`, which become per-group accuracies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eureka_trainer.data.errors import DataError
from eureka_trainer.data.records import PromptRecord, parse_object
from eureka_trainer.evaluation.metrics import GROUP_KEYS
from eureka_trainer.evaluation.rows import EvalDataError, Row, iter_field_problems, read_rows
from eureka_trainer.evaluation.templates import Template

_ID_TYPES = (str, int)
_ANSWER_TYPES = (str, int, float)


@dataclass(frozen=True)
class GoldRow:
    """One evaluation record's id, gold answer and groups, and the row it came from."""

    id: str
    answer: str
    groups: dict[str, str]
    row: Row


@dataclass
class EvalItem:
    """One prompt to evaluate: its gold row and the parsed prompt (`eureka_trainer.data`)."""

    gold: GoldRow
    record: PromptRecord


def is_k12(row: Row) -> bool:
    """A K12 row carries a bare `question` and no conversation."""
    return "question" in row.data and not ({"conversations", "message"} & row.data.keys())


def read_gold(paths: str | Path | Sequence[str | Path]) -> list[GoldRow]:
    """Ids, gold answers and groups of every row of the files; duplicate ids are an error.

    Raises `EvalDataError` listing every bad row (`file:line: field: message`).
    """
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    golds: list[GoldRow] = []
    problems: list[str] = []
    seen: dict[str, Row] = {}
    for file in files:
        for row in read_rows(file):
            found = list(iter_field_problems(row, {"id": _ID_TYPES, "answer": _ANSWER_TYPES}))
            if found:
                problems += found
                continue
            gold = _gold(row)
            if gold.id in seen:
                problems.append(
                    f"{row.where('id')}: duplicate id {gold.id!r} (first at {seen[gold.id].where()})"
                )
                continue
            seen[gold.id] = row
            golds.append(gold)
    if problems:
        raise EvalDataError(problems)
    return golds


def _gold(row: Row) -> GoldRow:
    groups = {k: str(row.data[k]) for k in GROUP_KEYS if isinstance(row.data.get(k), str | int)}
    return GoldRow(id=str(row.data["id"]), answer=str(row.data["answer"]), groups=groups, row=row)


def read_items(
    paths: str | Path | Sequence[str | Path],
    template: Template,
    *,
    family: str = "qwen2_5_vl",
    image_root: str | Path | None = None,
) -> list[EvalItem]:
    """Every record parsed into a `PromptRecord` as training parses it; K12 questions templated.

    Image files must exist (checked here, so a missing image names its file and line before a
    model is loaded). Raises `EvalDataError` listing every bad record.
    """
    golds = read_gold(paths)
    items, problems = [], []
    for gold in golds:
        try:
            items.append(EvalItem(gold, _record(gold, template, family, image_root)))
        except EvalDataError as err:
            problems += err.problems
        except DataError as err:
            problems.append(str(err))
    if problems:
        raise EvalDataError(problems)
    return items


def _record(
    gold: GoldRow, template: Template, family: str, image_root: str | Path | None
) -> PromptRecord:
    row = gold.row
    root = Path(image_root) if image_root else row.path.parent
    prompt = k12_prompt(gold, template, root) if is_k12(row) else dict(row.data)
    return parse_object(prompt, row.where(), image_root=root, family=family)


def k12_prompt(gold: GoldRow, template: Template, image_root: Path) -> dict[str, Any]:
    """The K12 row as a `conversations` record: the template's messages and a `file://` URL."""
    row = gold.row
    question = row.data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalDataError([f"{row.where('question')}: expected a non-empty string"])
    images = _k12_images(row, image_root)
    return {
        "id": gold.id,
        "conversations": template.messages(question, len(images)),
        "answer": gold.answer,
        "image_urls": [f"file://{p}" for p in images],
    }


def _k12_images(row: Row, root: Path) -> list[Path]:
    """Absolute paths of the row's `image_path` (a string or a list; absent: text-only)."""
    value = row.data.get("image_path")
    if value in (None, "", []):
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise EvalDataError([f"{row.where('image_path')}: expected a path or a list of paths"])
    paths = [(root / n.removeprefix("file://")).resolve() for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise EvalDataError([f"{row.where('image_path')}: no such image: {', '.join(missing)}"])
    return paths
