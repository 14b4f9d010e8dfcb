"""`object_store` (any machine, CPU or GPU): learner rank 0 returns its weights as a list of
`WeightBucket`s, which Ray puts once in its object store; each rollout engine receives the same
object reference and loads every bucket in one call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eureka_trainer.sync.base import DEFAULT_BUCKET_BYTES, sync_metrics


class ObjectStoreSync:
    """Buckets through Ray's object store (one put, one `load_weights` call per engine)."""

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes

    def push(self, learners: Sequence[Any], engines: Sequence[Any]) -> dict[str, float]:
        import ray

        start = time.perf_counter()
        # Rank 0 holds the full weights (ZeRO-3 gathers them inside `weight_buckets`), but
        # every rank must take part in the gather, so all are called.
        refs = [learner.weight_buckets.remote(self.bucket_bytes) for learner in learners]
        # Each engine worker answers (buckets, bytes) it loaded.
        loaded = ray.get([engine.load_weights.remote(refs[0]) for engine in engines])
        ray.get(refs[1:])
        buckets, nbytes = loaded[0] if loaded else (0, 0)
        return sync_metrics(start, buckets, nbytes)
