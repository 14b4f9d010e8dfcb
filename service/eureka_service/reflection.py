"""The "aha" signal: how often responses reflect on their own reasoning.

MM-EUREKA and DeepSeek-R1 report that rule-based RL makes models re-check their work ("wait",
"let me verify"). The rate of responses containing such words, per step, is a cheap proxy the
dashboard plots next to the rewards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class ReflectionRate:
    """Per-step share of reflective responses, fed sample by sample."""

    _hits: dict[int, int] = field(default_factory=dict)
    _totals: dict[int, int] = field(default_factory=dict)

    def add(self, sample: Mapping[str, Any]) -> None:
        """Count one sample record (`step`, `response`); records without a step are ignored."""
        step, response = sample.get("step"), sample.get("response")
        if not isinstance(step, int) or not isinstance(response, str):
            return
        self._totals[step] = self._totals.get(step, 0) + 1
        self._hits[step] = self._hits.get(step, 0) + is_reflective(response)

    def extend(self, samples: Iterable[Mapping[str, Any]]) -> None:
        for sample in samples:
            self.add(sample)

    def series(self) -> tuple[list[int], list[float]]:
        """(steps, rates): rate in [0, 1] for each step that has samples, steps increasing."""
        steps = sorted(self._totals)
        return steps, [self._hits[s] / self._totals[s] for s in steps]
