"""A gold whose parsing times out is retried with a longer budget, not cached as unparseable.

A timeout says the machine was slow or the parse is long, not that the gold is bad: before,
one timeout marked the gold unparseable for the rest of the run, so every later sample of that
prompt was dropped. Now: the sample is invalid this time (`gold_timeout`), the next job for that
gold gets RETRY_FACTOR x the budget, and only a second timeout marks it unparseable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from eureka_trainer.rewards.accuracy import RETRY_FACTOR, AccuracyScorer, ScoreCache
from eureka_trainer.rewards.pool import Job, Outcome, WorkerPool, shared_pool

pytestmark = [pytest.mark.usefixtures("warm_pool"), pytest.mark.timeout(60)]

# Each parses in ~0.1 s: far over a 1 ms budget, far under 5 s. One gold per test: workers
# remember the golds they parsed.
GOLD, GOLD2 = "\\sin(10^{50000})", "\\sin(10^{50001})"
ANSWER, ANSWER2 = (f"<answer>${g}+0$</answer>" for g in (GOLD, GOLD2))


class RecordingPool:
    """The real shared pool, with the budgets of each call that had jobs written down."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.budgets: list[dict[int, float]] = []

    def run(
        self, jobs: Sequence[Job], timeout: float, budgets: Mapping[int, float] | None = None
    ) -> dict[int, Outcome]:
        if jobs:
            self.budgets.append(dict(budgets or {}))
        return self.pool.run(jobs, timeout, budgets)


def scorer(pool: RecordingPool, cache: ScoreCache, timeout: float) -> AccuracyScorer:
    return AccuracyScorer(pool, "instruct", timeout, cache)  # type: ignore[arg-type]


def test_a_gold_timeout_is_retried_with_a_longer_budget() -> None:
    pool, cache = RecordingPool(shared_pool()), ScoreCache()
    first = scorer(pool, cache, timeout=0.001).score([ANSWER], [GOLD])[0]
    assert (first.path, first.gold_parsed, first.timed_out) == ("gold_timeout", False, True)
    assert cache.gold(GOLD) is None  # not known to be unparseable
    second = scorer(pool, cache, timeout=5.0).score([ANSWER], [GOLD])[0]
    assert pool.budgets[-1] == {0: 5.0 * RETRY_FACTOR}
    assert (second.score, second.gold_parsed, second.path) == (1.0, True, "math_verify")
    assert cache.gold(GOLD) is True


def test_a_second_timeout_marks_the_gold_unparseable() -> None:
    pool, cache = RecordingPool(shared_pool()), ScoreCache()
    for _ in range(2):
        result = scorer(pool, cache, timeout=0.001).score([ANSWER2], [GOLD2])[0]
        assert result.path == "gold_timeout"
    assert pool.budgets == [{}, {0: 0.001 * RETRY_FACTOR}]
    assert cache.gold(GOLD2) is False
    third = scorer(pool, cache, timeout=5.0).score([ANSWER2], [GOLD2])[0]
    assert (third.path, third.gold_parsed) == ("gold_unparsed", False)
    assert len(pool.budgets) == 2  # decided without a worker


def test_samples_of_one_gold_in_one_batch_count_as_one_timeout() -> None:
    # An RL batch holds several samples per prompt: their gold times out in every job of the
    # batch, and that is still one timeout of the gold, not a used-up retry.
    gold = "\\sin(10^{50002})"
    answers = [f"<answer>${k}$</answer>" for k in range(3)]
    pool, cache = RecordingPool(shared_pool()), ScoreCache()
    results = scorer(pool, cache, timeout=0.001).score(answers, [gold] * 3)
    assert [r.path for r in results] == ["gold_timeout"] * 3
    assert cache.gold(gold) is None and cache.retrying(gold)
