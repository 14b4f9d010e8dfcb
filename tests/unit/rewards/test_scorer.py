"""BatchScorer: weights, validity, metrics, and the kill-and-replace of a hung worker."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from eureka_trainer.config import RewardSpec, RewardsSpec
from eureka_trainer.rewards import BatchScorer

pytestmark = pytest.mark.timeout(120)

GOOD = "<think>t</think><answer>$\\frac{1}{2}$</answer>"
HANG = "<think>t</think><answer>$(x+1)^{6000}$</answer>"  # passes the guards, hangs sympy


@pytest.fixture(scope="module")
def scorer() -> Iterator[BatchScorer]:
    spec = RewardsSpec(
        components=[
            RewardSpec(name="accuracy"),
            RewardSpec(name="format"),
            RewardSpec(name="repetition", weight=0.25, options={"ngram": 2}),
        ],
        timeout_seconds=1.0,
        workers=2,
    )
    with BatchScorer(spec) as s:
        s.warm_up()
        yield s


def test_components_total_valid_metrics(scorer: BatchScorer) -> None:
    responses = [GOOD, "<answer>0.5</answer>", "<answer>x</answer>", "la " * 40, GOOD]
    answers = ["0.5", "0.5", "0.5", "0.5", ""]
    batch = scorer.score(responses, answers)
    assert batch.components["accuracy"] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert batch.components["format"] == [1.0, 0.0, 0.0, 0.0, 1.0]
    rep = batch.components["repetition"]
    assert rep[:3] == [0.0, 0.0, 0.0] and rep[3] < -0.9
    assert batch.total == pytest.approx([1.5, 1.0, 0.0, 0.25 * rep[3], 0.5])
    assert batch.valid == [True, True, True, True, False]  # "" cannot be parsed
    m = batch.metrics
    # Over the 4 valid samples (2 right); the invalid one is counted, not averaged in as 0.
    assert m["reward/accuracy"] == pytest.approx(0.5)
    assert m["reward/accuracy_invalid"] == 1.0
    assert m["reward/format"] == pytest.approx(0.4)
    assert m["reward/total"] == pytest.approx(sum(batch.total) / 5)
    assert m["reward/gold_parse_failures"] == 1.0
    assert m["reward/timeouts"] == 0.0


def test_hung_worker_is_killed_and_replaced(scorer: BatchScorer) -> None:
    assert scorer._pool is not None
    before = {w.proc.pid for w in scorer._pool._idle}
    replaced = scorer.workers_replaced
    responses = [GOOD] * 6 + [HANG] + [GOOD] * 6
    answers = [f"\\frac{{{k}}}{{{2 * k}}}" for k in range(1, 14)]  # distinct golds: real work
    start = time.monotonic()
    batch = scorer.score(responses, answers)
    elapsed = time.monotonic() - start
    assert batch.components["accuracy"] == [1.0] * 6 + [0.0] + [1.0] * 6
    assert batch.metrics["reward/timeouts"] == 1.0
    assert 1.0 <= batch.metrics["reward/slowest_seconds"] < 1.0 + 2.0
    assert batch.valid == [True] * 13
    assert scorer.workers_replaced == replaced + 1
    after = {w.proc.pid for w in scorer._pool._idle}
    killed = before - after
    assert len(killed) == 1 and len(after) == 2
    with pytest.raises(ProcessLookupError):
        os.kill(killed.pop(), 0)
    assert elapsed < 1.0 + 4.0
    again = scorer.score([GOOD, "<answer>1/2</answer>"], ["0.5", "\\frac{2}{4}"])
    assert again.components["accuracy"] == [1.0, 1.0]


def test_fast_paths_skip_the_workers(scorer: BatchScorer) -> None:
    responses = [
        "<answer>42</answer>",
        "<answer>41</answer>",
        "<answer>B</answer>",
        "<answer>7.5</answer>",
    ] * 50
    answers = ["42", "42", "B", "7"] * 50
    batch = scorer.score(responses, answers)
    assert batch.components["accuracy"] == [1.0, 0.0, 1.0, 0.0] * 50
    assert batch.metrics["reward/worker_jobs"] == 0.0


def test_gold_parsed_once_then_cached(scorer: BatchScorer) -> None:
    gold = "\\frac{7}{9}"
    first = scorer.score(["<answer>$\\frac{7}{9}$</answer>"], [gold])
    assert first.metrics["reward/worker_jobs"] == 1.0
    second = scorer.score(["<answer>$\\frac{7}{9}$</answer>"], [gold])
    assert second.metrics["reward/worker_jobs"] == 0.0  # known gold + exact match
    bad = scorer.score(["<answer>1</answer>"], ["\\text{}"])
    assert bad.valid == [False]
    again = scorer.score(["<answer>1</answer>"], ["\\text{}"])
    assert again.valid == [False] and again.metrics["reward/worker_jobs"] == 0.0


def test_repeated_answers_go_to_a_worker_once(scorer: BatchScorer) -> None:
    responses = ["<answer>$(2, 5]$</answer>"] * 6 + ["<answer>$[2, 5]$</answer>"] * 2
    batch = scorer.score(responses, ["(2,5]"] * 8)
    assert batch.components["accuracy"] == [1.0] * 6 + [0.0] * 2
    assert batch.metrics["reward/worker_jobs"] == 2.0
    again = scorer.score(responses, ["(2,5]"] * 8)  # remembered across batches
    assert again.components["accuracy"] == batch.components["accuracy"]
    assert again.metrics["reward/worker_jobs"] == 0.0


def test_length_mismatch_is_an_error(scorer: BatchScorer) -> None:
    with pytest.raises(ValueError, match="2 responses but 1 answers"):
        scorer.score(["a", "b"], ["1"])


def test_without_accuracy_no_workers_start() -> None:
    spec = RewardsSpec(components=[RewardSpec(name="format")], mode="boxed")
    with BatchScorer(spec) as s:
        assert s._pool is None
        batch = s.score(["<think>" + "x" * 300 + "</think><answer>1</answer>"], ["1"])
    assert batch.total == [1.0] and batch.valid == [True]
    assert batch.metrics["reward/timeouts"] == 0.0


def test_closed_scorer_refuses_work() -> None:
    s = BatchScorer(RewardsSpec(workers=1))
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.score([GOOD], ["\\frac{1}{3}"])


def test_workers_dying_at_start_is_an_error_not_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that exits before it is ready (e.g. an unguarded main script) must not loop."""
    import sys

    from eureka_trainer.rewards import pool as pool_module

    def dying_spawn(memory_limit: int) -> pool_module._Worker:
        ctx = pool_module._context()
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=sys.exit, args=(3,), daemon=True)
        proc.start()
        child.close()
        return pool_module._Worker(proc=proc, conn=parent, started=time.monotonic())

    monkeypatch.setattr(pool_module, "_spawn", dying_spawn)
    pool = pool_module.WorkerPool(1)
    try:
        start = time.monotonic()
        with pytest.raises(pool_module.WorkerStartupError, match="3 reward worker processes"):
            pool.run([(0, "1", "2")], timeout=1.0)
        assert time.monotonic() - start < 30
    finally:
        pool.close()
