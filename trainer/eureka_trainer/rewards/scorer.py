"""BatchScorer: every reward component of a spec over a batch of responses, in one call per step.

Cheap components (format, repetition, installed `module:function` rewards) run in the caller.
Accuracy decides what it can in the caller (option letters, exact and numeric matches, known
unparseable golds, hostile inputs) and sends only the rest to worker processes, in chunks
grouped by gold answer, with a hard deadline per sample: a hung worker is killed and replaced,
its sample scores 0 and is counted in `reward/timeouts`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from eureka_trainer.config import RewardsSpec
from eureka_trainer.rewards.accuracy import AccuracyResult, AccuracyScorer, ScoreCache
from eureka_trainer.rewards.pool import WorkerPool
from eureka_trainer.rewards.registry import BoundReward, bind


@dataclass
class ScoreBatch:
    """Rewards of one batch.

    components: unweighted score per sample, by component name.
    total: weighted sum of the components per sample.
    valid: False where the gold answer could not be parsed (the trainer drops those samples).
    metrics: batch means `reward/total` and `reward/<component>` (`reward/accuracy` over the valid
    samples only, with `reward/accuracy_invalid` the count left out), and counts
    `reward/timeouts`, `reward/gold_parse_failures`, `reward/refused` (answers too hostile for
    sympy), `reward/worker_jobs` (samples that needed a math-verify worker) and
    `reward/slowest_seconds` (the slowest sample's time in a worker).
    """

    components: dict[str, list[float]]
    total: list[float]
    valid: list[bool]
    metrics: dict[str, float] = field(default_factory=dict)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class BatchScorer:
    """Scores batches with the components of a `RewardsSpec`; owns its worker processes.

    Workers start in the constructor (so they boot while the first rollout runs); `close()` or
    leaving a `with` block stops them.
    """

    def __init__(self, spec: RewardsSpec) -> None:
        self.spec = spec
        self.rewards: list[BoundReward] = bind(spec)
        self._accuracy: AccuracyScorer | None = None
        self._pool: WorkerPool | None = None
        if any(r.component.local is None for r in self.rewards):
            self._pool = WorkerPool(spec.workers or _cpu_count())
            self._accuracy = AccuracyScorer(
                self._pool, spec.mode, spec.timeout_seconds, ScoreCache()
            )

    def warm_up(self) -> None:
        """Wait until every worker has booted (optional; the first batch would wait anyway)."""
        if self._pool is not None:
            self._pool.warm_up()

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> ScoreBatch:
        """Score each response against the gold answer at the same index."""
        if len(responses) != len(answers):
            raise ValueError(f"{len(responses)} responses but {len(answers)} answers")
        components: dict[str, list[float]] = {}
        accuracy: list[AccuracyResult] = []
        worker_jobs = 0
        for reward in self.rewards:
            if reward.component.local is None:
                assert self._accuracy is not None
                accuracy, worker_jobs = self._accuracy.score_counted(responses, answers)
                components[reward.name] = [r.score for r in accuracy]
            else:
                mode = self.spec.mode
                components[reward.name] = [
                    reward(r, a, mode) for r, a in zip(responses, answers, strict=True)
                ]
        total = [
            sum(reward.weight * components[reward.name][i] for reward in self.rewards)
            for i in range(len(responses))
        ]
        valid = [r.gold_parsed for r in accuracy] if accuracy else [True] * len(responses)
        metrics = _metrics(components, total, accuracy)
        if self._accuracy is not None:
            metrics["reward/worker_jobs"] = float(worker_jobs)
        return ScoreBatch(components, total, valid, metrics)

    @property
    def workers_replaced(self) -> int:
        """Workers killed at a deadline or found dead, since this scorer started."""
        return self._pool.replaced if self._pool is not None else 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> BatchScorer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _metrics(
    components: dict[str, list[float]], total: list[float], accuracy: list[AccuracyResult]
) -> dict[str, float]:
    metrics = {"reward/total": _mean(total)}
    for name, values in components.items():
        metrics[f"reward/{name}"] = _mean(values)
    if accuracy:  # an unparseable gold says nothing about the policy: not averaged in as 0
        scores = [r.score for r in accuracy if r.gold_parsed]
        metrics["reward/accuracy"] = _mean(scores)
        metrics["reward/accuracy_invalid"] = float(len(accuracy) - len(scores))
    paths = [r.path for r in accuracy]
    metrics["reward/timeouts"] = float(sum(r.timed_out for r in accuracy))
    metrics["reward/gold_parse_failures"] = float(sum(not r.gold_parsed for r in accuracy))
    metrics["reward/refused"] = float(paths.count("refused"))
    metrics["reward/slowest_seconds"] = max((r.seconds for r in accuracy), default=0.0)
    return metrics
