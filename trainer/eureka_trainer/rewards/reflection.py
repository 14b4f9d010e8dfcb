"""The "aha" signal: the share of responses that re-check their own reasoning.

MM-EUREKA and DeepSeek-R1 report that rule-based RL makes models reflect ("wait", "let me
verify"). The trainer logs `reflection/rate` over every response of the step (metrics.jsonl,
the RLJob status and TensorBoard); the job service reuses `is_reflective` to filter samples.
Not a reward: nothing is trained on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REFLECTION_WORDS: tuple[str, ...] = (
    "wait",
    "re-check",
    "recheck",
    "double-check",
    "double check",
    "verify",
    "re-evaluate",
    "reevaluate",
    "reconsider",
    "rethink",
    "let me check",
    "mistake",
    "hmm",
)
"""Phrases that mark a reflective response (matched case-insensitively, as whole words)."""

_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(word) for word in REFLECTION_WORDS) + r")\b", re.IGNORECASE
)


def is_reflective(text: str) -> bool:
    """Whether a response holds at least one reflection phrase."""
    return _PATTERN.search(text) is not None


def reflection_rate(responses: Iterable[str]) -> float | None:
    """Share in [0, 1] of `responses` that are reflective (None for no responses)."""
    total = hits = 0
    for text in responses:
        total += 1
        hits += is_reflective(text)
    return hits / total if total else None
