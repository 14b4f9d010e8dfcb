"""The accuracy reward: cheap decisions in the caller, math-verify in killable worker processes.

Order of decision for one (response, gold) pair, cheapest first:

1. a multiple-choice gold (`B`, `(B)`): the answer must choose that letter and no other option;
2. a gold answer already known not to parse: 0, and the sample is marked invalid;
3. no answer found, or an answer too hostile for sympy (`guards.refusal`): 0;
4. exact string match (after stripping whitespace and `$..$`), then plain-number comparison
   against a one-part gold read by the gold rules (`golds.read_gold`: `18.`, `30°`, `40m`);
5. otherwise math-verify `parse` + `verify` in a worker process, killed at the deadline; there
   multi-part golds (`$$7$$ $$10$$`) need every part answered (see golds.py).

A gold whose parsing passes the deadline once is retried once with RETRY_FACTOR times the
budget (a loaded machine is not a bad gold); only a second timeout marks it unparseable.

A gold answer that math-verify cannot parse never scores 1.0 (MM-EUREKA's scores 1.0): the
result says `gold_parsed=False`, and the batch scorer excludes and counts such samples.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from eureka_trainer.rewards.extract import (
    Mode,
    as_number,
    choice_correct,
    choice_letter,
    extract_answer,
    normalize,
    numeric_decision,
)
from eureka_trainer.rewards.golds import normalize_part, read_gold
from eureka_trainer.rewards.guards import MAX_ANSWER_CHARS, refusal
from eureka_trainer.rewards.pool import Job, Outcome, WorkerPool, shared_pool

#: A gold whose parsing timed out is retried this many times, with RETRY_FACTOR x the budget.
GOLD_TIMEOUT_RETRIES = 1
RETRY_FACTOR = 4.0


@dataclass(frozen=True)
class AccuracyResult:
    """One sample's accuracy and how it was decided.

    path: `choice`, `exact`, `numeric`, `math_verify`, `no_answer`, `refused`, `timeout`,
    `crash`, `gold_unparsed` or `gold_timeout` (the gold's own parsing passed the deadline:
    invalid this time, retried with a longer budget next time).
    """

    score: float
    gold_parsed: bool
    timed_out: bool = False
    path: str = "math_verify"
    seconds: float = field(default=0.0, repr=False, compare=False)
    """Wall time spent in a worker (0 when decided in the caller)."""


class ScoreCache:
    """Thread-safe, bounded memory of math-verify's answers: which golds parse, and verdicts.

    RL samples of one prompt often give the same answer; a (gold, answer) pair that a worker
    judged once is not sent again (in the same batch or a later one).
    """

    MAX_KEY_CHARS = 2_000  # longer answers are not remembered (memory bound)

    def __init__(self, max_golds: int = 200_000, max_verdicts: int = 50_000) -> None:
        self._golds: dict[str, bool] = {}
        self._gold_timeouts: dict[str, int] = {}  # golds whose parsing passed a deadline once
        self._verdicts: OrderedDict[tuple[str, str], Outcome] = OrderedDict()
        self._lock = threading.Lock()
        self._max_golds = max_golds
        self._max_verdicts = max_verdicts

    def gold(self, gold: str) -> bool | None:
        """True/False when known (plain numbers and option letters always parse), else None."""
        if _single_number(gold) is not None or choice_letter(gold) is not None:
            return True
        if refusal(gold):
            return False
        return self._golds.get(gold)

    def put_gold(self, gold: str, ok: bool) -> None:
        with self._lock:
            if len(self._golds) >= self._max_golds:
                self._golds.clear()  # rare: a new epoch re-learns its golds in one batch
            self._golds[gold] = ok

    def gold_timed_out(self, gold: str) -> None:
        """The gold's parsing passed its deadline: retry once with a longer budget, then give up."""
        with self._lock:
            count = self._gold_timeouts.get(gold, 0) + 1
            if count >= GOLD_TIMEOUT_RETRIES + 1:
                self._gold_timeouts.pop(gold, None)
            else:
                self._gold_timeouts[gold] = count
        if count >= GOLD_TIMEOUT_RETRIES + 1:
            self.put_gold(gold, False)

    def retrying(self, gold: str) -> bool:
        """Did this gold's parsing time out before (its next job gets a longer budget)?"""
        return gold in self._gold_timeouts

    def verdict(self, gold: str, pred: str) -> Outcome | None:
        with self._lock:
            return self._verdicts.get((gold, pred))

    def put_verdict(self, gold: str, pred: str, outcome: Outcome) -> None:
        if len(gold) + len(pred) > self.MAX_KEY_CHARS:
            return
        with self._lock:
            self._verdicts[(gold, pred)] = replace(outcome, seconds=0.0)
            if len(self._verdicts) > self._max_verdicts:
                self._verdicts.popitem(last=False)


@dataclass(frozen=True)
class _Pending:
    """A sample the caller could not decide: what to send to a worker."""

    pred: str
    verdict: AccuracyResult | None = None  # used when the worker only confirms the gold


def plan(response: str, gold: str, mode: Mode, cache: ScoreCache) -> AccuracyResult | _Pending:
    """Decide a sample without sympy when possible; otherwise say what a worker must check."""
    letter = choice_letter(gold)
    pred = extract_answer(response, mode)
    if letter is not None:  # a 50,000-character answer to a choice question is no choice
        hit = pred is not None and len(pred) <= MAX_ANSWER_CHARS and choice_correct(letter, pred)
        return AccuracyResult(float(hit), gold_parsed=True, path="choice")
    known = cache.gold(gold)
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
    gold_num, pred_num = _single_number(gold), as_number(normalize_part(pred))
    if gold_num is not None and pred_num is not None:
        same = numeric_decision(gold_num, pred_num)
        if same is not None:
            return AccuracyResult(float(same), gold_parsed=True, path="numeric")
    return None


def _single_number(gold: str) -> Decimal | None:
    """The gold as a plain number when it is one answer that is a number (`18.`, `30°`)."""
    part = read_gold(gold).single
    return None if part is None or part.textual else as_number(part.text)


def _resolve(pending: _Pending, outcome: Outcome) -> AccuracyResult:
    """Combine a worker's outcome with what the caller had already decided."""
    failed = outcome.timed_out or outcome.crashed
    path = "timeout" if outcome.timed_out else "crash"
    if outcome.gold_ok is False:
        return AccuracyResult(0.0, gold_parsed=False, path="gold_unparsed")
    if outcome.gold_ok is None:  # the gold's own parsing hung or crashed the worker
        path = "gold_timeout" if outcome.timed_out else "crash"
        return AccuracyResult(0.0, gold_parsed=False, timed_out=outcome.timed_out, path=path)
    if pending.verdict is not None:
        return pending.verdict
    if failed:
        return AccuracyResult(0.0, gold_parsed=True, timed_out=outcome.timed_out, path=path)
    return AccuracyResult(float(outcome.correct), gold_parsed=True, path="math_verify")


class AccuracyScorer:
    """Scores many samples: local decisions first, the rest in one round of the worker pool."""

    def __init__(self, pool: WorkerPool, mode: Mode, timeout: float, cache: ScoreCache) -> None:
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
        first: dict[tuple[str, str], int] = {}  # (gold, pred) -> the sample that carries it
        known: dict[tuple[str, str], Outcome] = {}
        jobs: list[Job] = []
        for i, p in enumerate(planned):
            if isinstance(p, _Pending) and (key := (answers[i], p.pred)) not in first:
                first[key] = i
                cached = self.cache.verdict(*key)
                if cached is None:
                    jobs.append((i, *key))
                else:
                    known[key] = cached
        budgets = {
            job[0]: self.timeout * RETRY_FACTOR for job in jobs if self.cache.retrying(job[1])
        }
        outcomes = self.pool.run(jobs, self.timeout, budgets)
        gold_timeouts: set[str] = set()
        for i, gold, pred in jobs:
            known[(gold, pred)] = outcomes[i]
            if outcomes[i].gold_ok is None and outcomes[i].timed_out:
                gold_timeouts.add(gold)  # once per batch: its samples time out together
            else:
                self._learn(gold, pred, outcomes[i])
        for gold in gold_timeouts:
            self.cache.gold_timed_out(gold)  # slow or hanging: retried with a longer budget
        results: list[AccuracyResult] = []
        for i, p in enumerate(planned):
            if isinstance(p, AccuracyResult):
                results.append(p)
                continue
            key = (answers[i], p.pred)
            outcome = known[key]
            seconds = outcome.seconds if first[key] == i else 0.0
            results.append(replace(_resolve(p, outcome), seconds=seconds))
        return results, len(jobs)

    def _learn(self, gold: str, pred: str, outcome: Outcome) -> None:
        if outcome.gold_ok is not None:
            self.cache.put_gold(gold, outcome.gold_ok)
        elif outcome.crashed:
            self.cache.put_gold(gold, False)  # the gold alone kills the parser: never again
        if not outcome.crashed:
            self.cache.put_verdict(gold, pred, outcome)


_shared_cache = ScoreCache()


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
