"""Scoring evaluation responses with the training accuracy reward (math-verify, no LLM judge).

The accuracy is exactly the training reward's (`eureka_trainer.rewards`): the same extraction,
the same cheap decisions, the same killable math-verify workers with a hard per-sample timeout.
A gold answer that does not parse is reported per record, never scored as right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.evaluation.templates import Template
from eureka_trainer.rewards.accuracy import AccuracyScorer, GoldCache
from eureka_trainer.rewards.extract import extract_answer, last_boxed
from eureka_trainer.rewards.pool import WorkerPool, shared_pool


@dataclass
class AnswerScores:
    """Per response: `correct` [N] in {0, 1}, `extracted` [N] answer text, `gold_parsed` [N];
    `paths` counts how each was decided (`exact`, `math_verify`, `timeout` ...)."""

    correct: list[float]
    extracted: list[str | None]
    gold_parsed: list[bool]
    paths: Counter[str] = field(default_factory=Counter)

    @property
    def timeouts(self) -> int:
        """Responses whose math-verify check passed the deadline (scored 0)."""
        return self.paths["timeout"]


def displayed_answer(response: str, template: Template) -> str | None:
    """The answer as a reader sees it (and as majority voting compares it).

    `original` responses have no tags: their last `\\boxed{}` when there is one, else the whole
    response (which math-verify searches for the final expression).
    """
    if template.name == "original":
        boxed = last_boxed(response)
        if boxed is not None:
            return boxed
    mode: Any = template.reward_mode
    return extract_answer(response, mode)


class EvalScorer:
    """Scores (response, gold) pairs for one template; owns a worker pool unless given one.

    `workers` 0 shares the process-wide pool of `eureka_trainer.rewards` (two workers).
    """

    def __init__(
        self,
        template: Template,
        *,
        timeout: float = 5.0,
        workers: int = 0,
        pool: WorkerPool | None = None,
    ) -> None:
        self.template = template
        self._owned = pool is None and workers > 0
        self.pool = pool or (WorkerPool(workers) if workers > 0 else shared_pool())
        mode: Any = template.reward_mode
        self._scorer = AccuracyScorer(self.pool, mode, timeout, GoldCache())

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> AnswerScores:
        """Scores of `responses[i]` against `answers[i]` [N], in order."""
        results = self._scorer.score(responses, answers)
        return AnswerScores(
            correct=[r.score for r in results],
            extracted=[displayed_answer(r, self.template) for r in responses],
            gold_parsed=[r.gold_parsed for r in results],
            paths=Counter(r.path for r in results),
        )

    def close(self) -> None:
        """Stop the workers this scorer started (a shared pool stays)."""
        if self._owned:
            self.pool.close()

    def __enter__(self) -> EvalScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
