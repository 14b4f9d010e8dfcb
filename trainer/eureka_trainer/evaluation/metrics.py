"""Evaluation metrics over scored records: accuracy, pass@k, majority@k, per-group breakdowns.

Pure Python (no torch, no I/O). A record holds `n` responses to one prompt; each response has an
accuracy in {0, 1} and the answer text that was extracted from it. Records whose gold answer
does not parse are counted and left out of every mean (never scored as right or wrong).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any

from eureka_trainer.rewards.extract import normalize

#: Group keys read from a record (MMK12's `subject`; `source` in mixed training sets).
GROUP_KEYS = ("subject", "source")
#: At most this many values per group key become flat metrics (the status must stay small).
MAX_GROUP_METRICS = 16


@dataclass
class ScoredRecord:
    """One prompt's `n` responses and their scores.

    `correct` [n] accuracy of each response (0 or 1); `extracted` [n] the answer text read from
    each response (None when it had none); `valid` is False when the gold answer did not parse.
    """

    id: str
    answer: str
    responses: list[str]
    correct: list[float]
    extracted: list[str | None]
    valid: bool = True
    groups: dict[str, str] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    prompt: str = ""

    @property
    def n(self) -> int:
        """Responses of this record."""
        return len(self.responses)

    @property
    def accuracy(self) -> float:
        """Mean accuracy of the responses (pass@1 of this record)."""
        return sum(self.correct) / len(self.correct) if self.correct else 0.0

    def to_json(self) -> dict[str, Any]:
        """The per-sample JSONL row."""
        row: dict[str, Any] = {"id": self.id, **self.groups, "answer": self.answer}
        if self.prompt:
            row["prompt"] = self.prompt
        row.update(
            responses=self.responses,
            extracted=self.extracted,
            correct=self.correct,
            accuracy=self.accuracy,
            valid=self.valid,
        )
        if self.finish_reasons:
            row["finish_reasons"] = self.finish_reasons
        if self.n > 1:
            row["majority_correct"] = majority_correct(self.extracted, self.correct)
        return row


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt with `c` correct out of `n` samples: 1 - C(n-c,k)/C(n,k).

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2)
    (0.25, 1.0, 0.0)
    """
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 < k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def answer_key(answer: str | None) -> str | None:
    """What two answers must share to count as the same vote (delimiters and spaces ignored)."""
    if answer is None:
        return None
    key = " ".join(normalize(answer).split())
    return key or None


def majority_correct(extracted: Sequence[str | None], correct: Sequence[float]) -> float:
    """1.0 when the most frequent answer is right: majority@k over the given k samples.

    Responses without an answer do not vote; a tie goes to the answer seen first. Every
    response with the winning answer scored the same in practice; the first one decides.

    >>> majority_correct(["2", "3", " 3 ", None], [0.0, 1.0, 1.0, 0.0])
    1.0
    """
    keys = [answer_key(a) for a in extracted]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return float(correct[keys.index(winner)])


def ks_for(n: int) -> list[int]:
    """The k of pass@k reported for n samples: powers of two below n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) < n]
    return [*ks, n]


def summarize(records: Sequence[ScoredRecord]) -> dict[str, Any]:
    """Accuracy overall and per group (subject, source), plus pass@k / maj@k when n > 1."""
    valid = [r for r in records if r.valid]
    summary: dict[str, Any] = {
        "records": len(records),
        "scored": len(valid),
        "invalid_gold": [r.id for r in records if not r.valid],
        **_block(valid),
    }
    groups: dict[str, dict[str, Any]] = {}
    for key in GROUP_KEYS:
        values = sorted({r.groups[key] for r in valid if key in r.groups})
        if values:
            groups[key] = {v: _block([r for r in valid if r.groups.get(key) == v]) for v in values}
    if groups:
        summary["groups"] = groups
    return summary


def _block(records: Sequence[ScoredRecord]) -> dict[str, Any]:
    """records, correct, accuracy, and pass@k / maj@k over records that share the smallest n."""
    if not records:
        return {"count": 0, "correct": 0.0, "accuracy": 0.0}
    block: dict[str, Any] = {
        "count": len(records),
        "correct": sum(r.accuracy for r in records),
        "accuracy": _mean(r.accuracy for r in records),
    }
    n = min(r.n for r in records)
    if n > 1:
        for k in ks_for(n):
            block[f"pass@{k}"] = _mean(pass_at_k(n, int(sum(r.correct[:n])), k) for r in records)
        block[f"maj@{n}"] = _mean(majority_correct(r.extracted[:n], r.correct[:n]) for r in records)
    return block


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def flat_metrics(summary: Mapping[str, Any], prefix: str = "eval/") -> dict[str, float]:
    """The summary as flat numeric metrics (`eval/accuracy`, `eval/pass@4`, `eval/subject/math/accuracy`)."""
    metrics = {
        f"{prefix}{k}": float(v)
        for k, v in summary.items()
        if k.startswith(("accuracy", "pass@", "maj@"))
    }
    metrics[f"{prefix}records"] = float(summary["records"])
    metrics[f"{prefix}invalid_gold"] = float(len(summary["invalid_gold"]))
    for key, values in summary.get("groups", {}).items():
        for value, block in list(values.items())[:MAX_GROUP_METRICS]:
            metrics[f"{prefix}{key}/{value}/accuracy"] = float(block["accuracy"])
    return metrics
