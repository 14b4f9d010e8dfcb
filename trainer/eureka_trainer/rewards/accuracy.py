"""The accuracy reward: cheap decisions in the caller, math-verify in killable worker processes.

Order of decision for one (response, gold) pair, cheapest first:

1. a multiple-choice gold (`B`, `(B)`): the answer must name that letter and no other option;
2. a gold answer already known not to parse: 0, and the sample is marked invalid;
3. no answer found, or an answer too hostile for sympy (`extract.refusal`): 0;
4. exact string match (after stripping whitespace and `$..$`), then plain-number comparison;
5. otherwise math-verify `parse` + `verify` in a worker process, killed at the deadline.

A gold answer that math-verify cannot parse never scores 1.0 (MM-EUREKA's scores 1.0): the
result says `gold_parsed=False`, and the batch scorer excludes and counts such samples.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from eureka_trainer.rewards.extract import (
    Mode,
    as_number,
    choice_correct,
    choice_letter,
    extract_answer,
    normalize,
    numeric_decision,
    refusal,
)
from eureka_trainer.rewards.pool import Job, Outcome, WorkerPool, shared_pool


@dataclass(frozen=True)
class AccuracyResult:
    """One sample's accuracy and how it was decided.

    path: `choice`, `exact`, `numeric`, `math_verify`, `no_answer`, `refused`, `timeout`,
    `crash` or `gold_unparsed`.
    """

    score: float
    gold_parsed: bool
    timed_out: bool = False
    path: str = "math_verify"


class GoldCache:
    """Thread-safe memory of which gold answers math-verify could parse (bounded)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, gold: str) -> bool | None:
        """True/False when known (plain numbers and option letters always parse), else None."""
        if as_number(normalize(gold)) is not None or choice_letter(gold) is not None:
            return True
        if refusal(gold):
            return False
        return self._known.get(gold)

    def put(self, gold: str, ok: bool) -> None:
        with self._lock:
            if len(self._known) >= self._max:
                self._known.clear()  # rare: a new epoch re-learns its golds in one batch
            self._known[gold] = ok


@dataclass(frozen=True)
class _Pending:
    """A sample the caller could not decide: what to send to a worker."""

    pred: str
    verdict: AccuracyResult | None = None  # used when the worker only confirms the gold


def plan(response: str, gold: str, mode: Mode, cache: GoldCache) -> AccuracyResult | _Pending:
    """Decide a sample without sympy when possible; otherwise say what a worker must check."""
    letter = choice_letter(gold)
    pred = extract_answer(response, mode)
    if letter is not None:
        hit = pred is not None and choice_correct(letter, pred)
        return AccuracyResult(float(hit), gold_parsed=True, path="choice")
    known = cache.get(gold)
    if known is False:
        return AccuracyResult(0.0, gold_parsed=False, path="gold_unparsed")
    local = _local_verdict(pred, gold)
    if known and local is not None:
        return local
    if local is not None:  # the gold's status is unknown: a worker parses it, the verdict stands
        return _Pending(pred="", verdict=local)
    assert pred is not None
    if mode == "boxed" and "$" not in pred:
        pred = f"${pred}$"  # a box holds LaTeX; math-verify finds LaTeX only between delimiters
    return _Pending(pred=pred)


def _local_verdict(pred: str | None, gold: str) -> AccuracyResult | None:
    if pred is None:
        return AccuracyResult(0.0, gold_parsed=True, path="no_answer")
    if refusal(pred):
        return AccuracyResult(0.0, gold_parsed=True, path="refused")
    p, g = normalize(pred), normalize(gold)
    if p == g and p:
        return AccuracyResult(1.0, gold_parsed=True, path="exact")
    gold_num, pred_num = as_number(g), as_number(p)
    if gold_num is not None and pred_num is not None:
        same = numeric_decision(gold_num, pred_num)
        if same is not None:
            return AccuracyResult(float(same), gold_parsed=True, path="numeric")
    return None


def _resolve(pending: _Pending, outcome: Outcome) -> AccuracyResult:
    """Combine a worker's outcome with what the caller had already decided."""
    failed = outcome.timed_out or outcome.crashed
    path = "timeout" if outcome.timed_out else "crash"
    if outcome.gold_ok is False:
        return AccuracyResult(0.0, gold_parsed=False, path="gold_unparsed")
    if outcome.gold_ok is None:  # the gold's own parsing hung or crashed the worker
        return AccuracyResult(0.0, gold_parsed=False, timed_out=outcome.timed_out, path=path)
    if pending.verdict is not None:
        return pending.verdict
    if failed:
        return AccuracyResult(0.0, gold_parsed=True, timed_out=outcome.timed_out, path=path)
    return AccuracyResult(float(outcome.correct), gold_parsed=True, path="math_verify")


class AccuracyScorer:
    """Scores many samples: local decisions first, the rest in one round of the worker pool."""

    def __init__(self, pool: WorkerPool, mode: Mode, timeout: float, cache: GoldCache) -> None:
        self.pool = pool
        self.mode = mode
        self.timeout = timeout
        self.cache = cache

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> list[AccuracyResult]:
        """One result per (response, answer) pair, in order."""
        return self.score_counted(responses, answers)[0]

    def score_counted(
        self, responses: Sequence[str], answers: Sequence[str]
    ) -> tuple[list[AccuracyResult], int]:
        """The results, and how many samples needed a worker (the rest were decided here)."""
        planned = [
            plan(r, a, self.mode, self.cache) for r, a in zip(responses, answers, strict=True)
        ]
        jobs: list[Job] = [
            (i, answers[i], p.pred) for i, p in enumerate(planned) if isinstance(p, _Pending)
        ]
        outcomes = self.pool.run(jobs, self.timeout)
        results: list[AccuracyResult] = []
        for i, p in enumerate(planned):
            if isinstance(p, AccuracyResult):
                results.append(p)
                continue
            outcome = outcomes[i]
            if outcome.gold_ok is not None:
                self.cache.put(answers[i], outcome.gold_ok)
            elif outcome.timed_out or outcome.crashed:
                self.cache.put(answers[i], False)  # the gold alone hangs the parser: never again
            results.append(_resolve(p, outcome))
        return results, len(jobs)


_shared_cache = GoldCache()


def accuracy_details(
    response: str, answer: str, mode: Mode = "instruct", timeout: float = 5.0
) -> AccuracyResult:
    """Score one response like `accuracy_reward`, and say how (gold parsed? timed out? path?).

    >>> accuracy_details("<answer>7</answer>", "7")
    AccuracyResult(score=1.0, gold_parsed=True, timed_out=False, path='exact')
    """
    scorer = AccuracyScorer(shared_pool(), mode, timeout, _shared_cache)
    return scorer.score([response], [answer])[0]


def accuracy_reward(
    response: str, answer: str, mode: Mode = "instruct", timeout: float = 5.0
) -> float:
    """1.0 when the response's answer matches the gold answer, else 0.0.

    Returns within about `timeout` seconds whatever the input, from any thread or process
    (the sympy work runs in a worker process that is killed at the deadline). A gold answer
    that cannot be parsed scores 0.0 (see `accuracy_details` to tell that case apart).

    >>> accuracy_reward("<think>...</think><answer>$\\\\frac{1}{2}$</answer>", "0.5")
    1.0
    >>> accuracy_reward("<answer>The answer is (C)</answer>", "C")
    1.0
    >>> accuracy_reward("<answer>C or D</answer>", "C")
    0.0
    >>> accuracy_reward(r"<think>...</think> so \\boxed{3}.", "3", mode="boxed")
    1.0
    """
    return accuracy_details(response, answer, mode, timeout).score
