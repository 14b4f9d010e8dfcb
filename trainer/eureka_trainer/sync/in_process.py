"""`in_process` (hybrid actors: engine and learner rank in one process): nothing moves when the
engine samples from the learner's module, else the weights are copied inside the process."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eureka_trainer.sync.base import DEFAULT_BUCKET_BYTES, sync_metrics


class InProcessSync:
    """Hybrid actors (`workers.HybridWorker`): each copies its learner's weights into its own
    engine, or nothing at all when the engine samples from the learner's module."""

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes
        self.shared: bool | None = None  # do all engines sample from their learner's module?

    def push(self, learners: Sequence[Any], engines: Sequence[Any]) -> dict[str, float]:
        import ray

        start = time.perf_counter()
        if self.shared is None:
            self.shared = all(ray.get([h.shares_weights.remote() for h in learners]))
        # `engines` are the same actors as `learners`; all ranks take part (ZeRO-3 gathers).
        calls = [] if self.shared else learners
        loaded = ray.get([h.sync_in_process.remote(self.bucket_bytes) for h in calls])
        buckets, nbytes = loaded[0] if loaded else (0, 0)
        return sync_metrics(start, buckets, nbytes)
