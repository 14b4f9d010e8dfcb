"""The "aha" rate from logged samples, for runs whose trainer did not log `reflection/rate`.

The trainer computes the rate over every response of a step (eureka_trainer.rewards.reflection);
runs written before that only have the few samples per step the sink keeps, so the service
estimates it from those (coarse: in steps of 1/samples).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.rewards.reflection import REFLECTION_WORDS, is_reflective

__all__ = ["REFLECTION_WORDS", "ReflectionRate", "is_reflective"]


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
