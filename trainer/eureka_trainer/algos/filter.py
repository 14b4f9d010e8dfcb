"""The online accuracy filter with refill (MM-EUREKA's qwen recipe, DAPO-style dynamic sampling).

Per prompt group of `n` samples the filter takes the mean accuracy and keeps the whole group iff
`lower <= mean <= upper` (both bounds inclusive), once the global step is above
`freezing_filter_steps`. Kept groups accumulate until `batch_groups` exist; `take()` returns
exactly that many and the rest carry over to the next step (and through `state_dict`).

The trainer's loop:

    while not filt.ready:
        groups, accuracy = rollout_and_score(filt.missing)   # at least `missing` prompts
        filt.add(groups, accuracy, step)
    batch = filt.take()            # exactly batch_groups groups
    log(filt.metrics())            # pass rate, pre-filter accuracy, kept, carried

Groups are opaque to the filter (the trainer's own type); `state_dict()` returns them as they
are, so they must be picklable for a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import torch

G = TypeVar("G")

BOUND_TOLERANCE = 1e-9
"""Slack on both bounds so that a mean such as 0.1 computed in floating point still counts as
inside `[0.1, 0.9]`: the bounds are meant inclusive."""


class FilterSettings(Protocol):
    """What the filter reads from `eureka_trainer.config.spec.FilterSpec`."""

    @property
    def enabled(self) -> bool: ...
    @property
    def lower(self) -> float: ...
    @property
    def upper(self) -> float: ...
    @property
    def freezing_filter_steps(self) -> int: ...


def group_means(accuracy: torch.Tensor | Sequence[Sequence[float]]) -> list[float]:
    """Mean accuracy of each group, `[G, n] -> [G]` (a tensor, or nested sequences, ragged ok)."""
    rows = accuracy.tolist() if isinstance(accuracy, torch.Tensor) else accuracy
    means = []
    for index, row in enumerate(rows):
        values = [float(v) for v in row]
        if not values:
            raise ValueError(f"group {index} has no accuracy values")
        means.append(math.fsum(values) / len(values))
    return means


class OnlineFilter(Generic[G]):
    """Keeps prompt groups whose mean accuracy is within bounds, and batches them.

    spec: the job's `FilterSpec` (`enabled`, `lower`, `upper`, `freezing_filter_steps`).
    batch_groups: prompt groups per train step (the job's rollout batch size).
    """

    def __init__(self, spec: FilterSettings, batch_groups: int) -> None:
        if batch_groups < 1:
            raise ValueError(f"batch_groups must be >= 1, got {batch_groups}")
        if spec.lower > spec.upper:
            raise ValueError(f"filter lower ({spec.lower}) must be <= upper ({spec.upper})")
        self.spec = spec
        self.batch_groups = batch_groups
        self._pending: list[G] = []
        self._window = _Window()
        self._last_metrics: dict[str, float] = {}

    def active(self, step: int) -> bool:
        """Whether groups are dropped at global step `step` (enabled and step > freezing steps)."""
        return self.spec.enabled and step > self.spec.freezing_filter_steps

    def keeps(self, mean_accuracy: float, step: int) -> bool:
        """Whether a group of this mean accuracy is kept at `step` (bounds inclusive)."""
        if not self.active(step):
            return True
        lower, upper = self.spec.lower - BOUND_TOLERANCE, self.spec.upper + BOUND_TOLERANCE
        return lower <= mean_accuracy <= upper

    def add(
        self, groups: Sequence[G], accuracy: torch.Tensor | Sequence[Sequence[float]], step: int
    ) -> list[bool]:
        """Filter freshly scored groups into the pending pool; returns the keep decision of each.

        groups: `G` opaque groups. accuracy: `[G, n]` per-sample accuracy in [0, 1].
        """
        means = group_means(accuracy)
        if len(means) != len(groups):
            raise ValueError(f"{len(groups)} groups but {len(means)} accuracy rows")
        kept = [self.keeps(mean, step) for mean in means]
        self._pending.extend(g for g, keep in zip(groups, kept, strict=True) if keep)
        rows = accuracy.tolist() if isinstance(accuracy, torch.Tensor) else accuracy
        self._window.record(kept, [len(r) for r in rows], means)
        return kept

    @property
    def pending(self) -> int:
        """Kept groups waiting to be taken (carried over included)."""
        return len(self._pending)

    @property
    def missing(self) -> int:
        """Groups still needed before `take()` can return a full batch (0 when ready)."""
        return max(0, self.batch_groups - len(self._pending))

    @property
    def ready(self) -> bool:
        """A full batch of kept groups is waiting."""
        return len(self._pending) >= self.batch_groups

    def take(self) -> list[G]:
        """Exactly `batch_groups` kept groups, oldest first; the rest carry over.

        Closes the metrics window: `metrics()` then describes the groups seen for this batch.
        """
        if not self.ready:
            raise RuntimeError(
                f"take() needs {self.batch_groups} kept groups, {len(self._pending)} are pending"
            )
        size = self.batch_groups
        batch, self._pending = self._pending[:size], self._pending[size:]
        self._last_metrics = self._window.metrics(carried=len(self._pending))
        self._window = _Window()
        return batch

    def metrics(self) -> dict[str, float]:
        """Metrics of the batch last taken (empty before the first `take()`).

        `filter/pass_rate`: kept / scored groups since the previous take; `filter/accuracy_before`:
        mean per-sample accuracy of those groups before filtering; `filter/kept_groups`;
        `filter/carried_groups`: kept groups left over for the next step; `filter/rounds`:
        `add()` calls it took (rollout rounds). The two rates are absent when the batch was
        made only of carried-over groups (nothing was scored for it).
        """
        return dict(self._last_metrics)

    def state_dict(self) -> dict[str, Any]:
        """The carried-over groups (as they are) and the open metrics window."""
        return {
            "pending": list(self._pending),
            "window": self._window.as_dict(),
            "last_metrics": dict(self._last_metrics),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned."""
        self._pending = list(state["pending"])
        self._window = _Window(**state["window"])
        self._last_metrics = dict(state["last_metrics"])


class _Window:
    """Counters of the groups scored since the last `take()`."""

    def __init__(
        self,
        seen: int = 0,
        kept: int = 0,
        samples: int = 0,
        accuracy_sum: float = 0.0,
        rounds: int = 0,
    ) -> None:
        self.seen, self.kept, self.samples = seen, kept, samples
        self.accuracy_sum, self.rounds = accuracy_sum, rounds

    def record(self, kept: list[bool], sizes: list[int], means: list[float]) -> None:
        self.seen += len(kept)
        self.kept += sum(kept)
        self.samples += sum(sizes)
        self.accuracy_sum += math.fsum(m * s for m, s in zip(means, sizes, strict=True))
        self.rounds += 1

    def metrics(self, carried: int) -> dict[str, float]:
        metrics = {
            "filter/kept_groups": float(self.kept),
            "filter/carried_groups": float(carried),
            "filter/rounds": float(self.rounds),
        }
        if self.seen:  # a batch made only of carried groups scored nothing: no rate to report
            metrics["filter/pass_rate"] = self.kept / self.seen
            metrics["filter/accuracy_before"] = self.accuracy_sum / self.samples
        return metrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "samples": self.samples,
            "accuracy_sum": self.accuracy_sum,
            "rounds": self.rounds,
        }
