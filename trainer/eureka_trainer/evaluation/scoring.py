"""Scoring evaluation responses with the training accuracy reward (math-verify, no LLM judge).

The accuracy is exactly the training reward's (`eureka_trainer.rewards`): the same extraction,
the same cheap decisions, the same killable math-verify workers with a hard per-sample timeout.
A gold answer that does not parse is reported per record, never scored as right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eureka_trainer.config.spec import RewardSpec, RewardsSpec
from eureka_trainer.evaluation.templates import Template
from eureka_trainer.rewards import BatchScorer
from eureka_trainer.rewards.extract import extract_answer, last_boxed


@dataclass
class AnswerScores:
    """Per response: `correct` [N] in {0, 1}, `extracted` [N] answer text, `gold_parsed` [N];
    `timeouts`: responses whose math-verify check passed the deadline (scored 0)."""

    correct: list[float]
    extracted: list[str | None]
    gold_parsed: list[bool]
    timeouts: int = 0


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
    """Scores (response, gold) pairs for one template with the training `BatchScorer`, reduced
    to its accuracy component (the template's reward mode; its workers, its hard timeout).

    `shared`: a running `BatchScorer` (the training one) reused when it scores accuracy in the
    template's mode, so evaluation during training starts no second pool of math-verify
    workers. Otherwise a scorer of its own starts on first use with `workers` processes (0:
    one per CPU core, as in training).
    """

    def __init__(
        self,
        template: Template,
        *,
        timeout: float = 5.0,
        workers: int = 0,
        shared: BatchScorer | None = None,
    ) -> None:
        self.template = template
        mode: Any = template.reward_mode
        self.spec = RewardsSpec(
            mode=mode,
            components=[RewardSpec(name="accuracy", weight=1.0)],
            timeout_seconds=timeout,
            workers=workers,
        )
        self._shared = shared if shared is not None and _scores_accuracy(shared, mode) else None
        self._own: BatchScorer | None = None

    @property
    def reuses_training_scorer(self) -> bool:
        """True when scoring goes through the shared (training) scorer."""
        return self._shared is not None

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> AnswerScores:
        """Scores of `responses[i]` against `answers[i]` [N], in order."""
        if not responses:
            return AnswerScores([], [], [])
        batch = self._scorer().score(responses, answers)
        return AnswerScores(
            correct=list(batch.components["accuracy"]),
            extracted=[displayed_answer(r, self.template) for r in responses],
            gold_parsed=list(batch.valid),
            timeouts=int(batch.metrics.get("reward/timeouts", 0)),
        )

    def _scorer(self) -> BatchScorer:
        if self._shared is not None:
            return self._shared
        if self._own is None:
            self._own = BatchScorer(self.spec)
        return self._own

    def close(self) -> None:
        """Stop the worker processes this scorer started (a shared scorer stays)."""
        if self._own is not None:
            self._own.close()
            self._own = None

    def __enter__(self) -> EvalScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scores_accuracy(scorer: BatchScorer, mode: str) -> bool:
    """The scorer has the accuracy component and reads answers in `mode`."""
    spec = scorer.spec
    return spec.mode == mode and any(c.name == "accuracy" for c in spec.components)
