"""Evaluation sets in MM-EUREKA's formats, read into gold answers and (for generation) prompts.

Formats, told apart per row:
- K12: `{id, question, answer, image_path?, subject?}` in a JSON list (MM-EUREKA's `k12.json`)
  or JSONL. `image_path` is relative to `image_root` (default: the data file's folder). The
  question is turned into chat messages by the chosen template (`templates.py`).
- The training formats: `{id, conversations, answer, image_urls?}` or `{id, message, answer}`;
  the conversation is kept as written and parsed by `eureka_trainer.data` (the same prompt
  parsing and image handling as training).
Every row may carry `subject` or `source`, which become per-group accuracies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """One prompt to evaluate: the gold row and the training-format dict of its prompt.

    `prompt` is `{id, conversations, answer, image_urls}` (what `eureka_trainer.data` parses).
    """

    gold: GoldRow
    prompt: dict[str, Any] = field(default_factory=dict)


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
    image_root: str | Path | None = None,
) -> list[EvalItem]:
    """Every record as a training-format prompt dict; K12 questions are templated.

    Image paths must exist (checked here, so a missing image names its file and line before any
    model is loaded).
    """
    golds = read_gold(paths)
    items, problems = [], []
    for gold in golds:
        try:
            prompt = (
                k12_prompt(gold, template, image_root)
                if is_k12(gold.row)
                else dict(gold.row.data, id=gold.id, answer=gold.answer)
            )
        except EvalDataError as err:
            problems += err.problems
            continue
        items.append(EvalItem(gold, prompt))
    if problems:
        raise EvalDataError(problems)
    return items


def k12_prompt(gold: GoldRow, template: Template, image_root: str | Path | None) -> dict[str, Any]:
    """The K12 row as a `conversations` record: the template's messages and a `file://` URL."""
    row = gold.row
    question = row.data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalDataError([f"{row.where('question')}: expected a non-empty string"])
    images = _k12_images(row, Path(image_root) if image_root else row.path.parent)
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
