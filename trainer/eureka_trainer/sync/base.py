"""What every weight sync transport shares: the `WeightSync` interface and its metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

DEFAULT_BUCKET_BYTES = 256 << 20


def sync_metrics(start: float, buckets: int, nbytes: int) -> dict[str, float]:
    """`time/sync` since `start` (a perf_counter value) and what was moved."""
    return {
        "time/sync": time.perf_counter() - start,
        "sync/buckets": float(buckets),
        "sync/megabytes": nbytes / 2**20,
    }


class WeightSync(Protocol):
    """Moves the learner's current weights into every rollout engine."""

    def push(self, learners: Sequence[Any], engines: Sequence[Any]) -> dict[str, float]:
        """Blocks until every engine holds the new weights; returns `sync/*` metrics."""
        ...
