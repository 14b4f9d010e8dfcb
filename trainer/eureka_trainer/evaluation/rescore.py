"""Re-scoring saved predictions without a model: `eureka eval --predictions FILE --data FILE`.

A predictions file holds `{id, response}` rows (JSONL, a JSON list, or MM-EUREKA's result file:
a JSON object of id -> row with `response`). Several rows with one id, or one row with a
`responses` list (what `eureka eval` writes), are that record's k samples. Ids on one side only
are reported, not guessed: the accuracy is over the records present on both sides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eureka_trainer.evaluation.datasets import GoldRow
from eureka_trainer.evaluation.metrics import ScoredRecord
from eureka_trainer.evaluation.rows import EvalDataError, Row, read_rows
from eureka_trainer.evaluation.scoring import EvalScorer


@dataclass
class Predictions:
    """Responses by id [k each], in file order, and where each id was first seen."""

    responses: dict[str, list[str]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)


def read_predictions(path: str | Path) -> Predictions:
    """Every prediction row's responses grouped by id; bad rows are all reported at once."""
    grouped: dict[str, list[str]] = defaultdict(list)
    where: dict[str, str] = {}
    problems: list[str] = []
    for row in read_rows(path):
        parsed = _prediction(row)
        if isinstance(parsed, str):
            problems.append(parsed)
            continue
        ident, responses = parsed
        grouped[ident].extend(responses)
        where.setdefault(ident, row.where())
    if problems:
        raise EvalDataError(problems)
    return Predictions(dict(grouped), where)


def _prediction(row: Row) -> tuple[str, list[str]] | str:
    """(id, responses) of one row, or the problem with it."""
    ident = row.data.get("id", row.key)
    if not isinstance(ident, str | int):
        return f"{row.where('id')}: missing (or not a string or integer)"
    if "responses" in row.data:
        responses = row.data["responses"]
        if (
            not isinstance(responses, list)
            or not all(isinstance(r, str) for r in responses)
            or not responses
        ):
            return f"{row.where('responses')}: expected a non-empty list of strings"
        return str(ident), list(responses)
    response = row.data.get("response")
    if not isinstance(response, str):
        kind = (
            "missing" if response is None else f"expected a string, got {type(response).__name__}"
        )
        return f"{row.where('response')}: {kind}"
    return str(ident), [response]


@dataclass
class Joined:
    """Gold rows paired with their predictions, and the ids found on one side only."""

    pairs: list[tuple[GoldRow, list[str]]]
    missing_predictions: list[str]
    unknown_ids: list[str]


def join(golds: Sequence[GoldRow], predictions: Predictions) -> Joined:
    """Pair each gold row with its responses; list ids without a prediction, or without data."""
    known = {g.id for g in golds}
    pairs = [(g, predictions.responses[g.id]) for g in golds if g.id in predictions.responses]
    return Joined(
        pairs=pairs,
        missing_predictions=[g.id for g in golds if g.id not in predictions.responses],
        unknown_ids=[i for i in predictions.responses if i not in known],
    )


def score_pairs(
    pairs: Sequence[tuple[GoldRow, Sequence[str]]],
    scorer: EvalScorer,
    *,
    prompts: Sequence[str] | None = None,
    finish_reasons: Sequence[Sequence[str]] | None = None,
) -> tuple[list[ScoredRecord], int]:
    """One `ScoredRecord` per (gold, responses) pair, all responses scored in one batch, and the
    number of responses that hit the scoring deadline."""
    flat = [r for _, responses in pairs for r in responses]
    answers = [g.answer for g, responses in pairs for _ in responses]
    scores = scorer.score(flat, answers)
    records, offset = [], 0
    for i, (gold, responses) in enumerate(pairs):
        span = slice(offset, offset + len(responses))
        offset += len(responses)
        records.append(
            ScoredRecord(
                id=gold.id,
                answer=gold.answer,
                responses=list(responses),
                correct=scores.correct[span],
                extracted=scores.extracted[span],
                valid=all(scores.gold_parsed[span]),
                groups=dict(gold.groups),
                finish_reasons=list(finish_reasons[i]) if finish_reasons else [],
                prompt=prompts[i] if prompts else "",
            )
        )
    return records, scores.timeouts


def rescore_summary_extras(joined: Joined) -> dict[str, Any]:
    """The summary fields that only re-scoring has: ids on one side only."""
    return {
        "missing": {
            "predictions": joined.missing_predictions,
            "data": joined.unknown_ids,
        }
    }
