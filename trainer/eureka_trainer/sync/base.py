"""Weight sync learner -> rollout engines, in buckets (never one call per parameter).

`in_process` (hybrid actors: engine and learner rank in one process): nothing moves when the
engine samples from the learner's module, else the weights are copied inside the process.

`object_store` (any machine, CPU or GPU): learner rank 0 returns its weights as a list of
`WeightBucket`s, which Ray puts once in its object store; each rollout engine receives the
same object reference and loads every bucket in one call. The result is timed as `time/sync`.

`broadcast` (split placement): learner rank 0 broadcasts each bucket as one flat tensor to the
engines over a torch.distributed group of their own: gloo on CPUs (tested here), NCCL on GPUs
(the same calls; not run here, no GPU).

The interface (`WeightSync.push(learners, engines) -> metrics`) is where CUDA IPC handles for
colocated vLLM engines would plug in; they are not implemented (no GPU here to test them), so
colocated vLLM uses the object store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from eureka_trainer.registry import Registry

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


class BroadcastSync:
    """Learner rank 0 broadcasts bucket by bucket to every engine over a group of their own
    (gloo on CPUs, NCCL on GPUs; see `eureka_trainer.broadcast`), formed at the first push."""

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes
        self.joined = False

    def join(self, learners: Sequence[Any], engines: Sequence[Any]) -> None:
        import ray

        # Every learner rank takes part (ZeRO-3 gathers); rank 0's layout is the one sent.
        layouts = ray.get([lr.weight_layouts.remote(self.bucket_bytes) for lr in learners])[0]
        address = ray.get(learners[0].broadcast_address.remote())
        size = 1 + len(engines)
        # Joining blocks until every member has joined: all calls are in flight together.
        ray.get(
            [learners[0].join_broadcast.remote(address, size)]
            + [
                e.join_broadcast.remote(address, i + 1, size, layouts)
                for i, e in enumerate(engines)
            ]
        )
        self.joined = True

    def push(self, learners: Sequence[Any], engines: Sequence[Any]) -> dict[str, float]:
        import ray

        start = time.perf_counter()
        if not self.joined:
            self.join(learners, engines)
        sending = [lr.broadcast_weights.remote(self.bucket_bytes) for lr in learners]
        loaded = ray.get([e.receive_weights.remote() for e in engines])
        buckets, nbytes = ray.get(sending)[0]
        if loaded and loaded[0][1] != nbytes:
            raise RuntimeError(f"weight broadcast: {nbytes} bytes sent, {loaded[0][1]} loaded")
        return sync_metrics(start, buckets, nbytes)


SYNC_METHODS: Registry[type] = Registry("weight sync method")
SYNC_METHODS.add("object_store", ObjectStoreSync)
SYNC_METHODS.add("in_process", InProcessSync)
SYNC_METHODS.add("broadcast", BroadcastSync)


def make_sync(method: str = "object_store", **kwargs: Any) -> WeightSync:
    """The weight sync registered under `method`."""
    sync: WeightSync = SYNC_METHODS.get(method)(**kwargs)
    return sync
