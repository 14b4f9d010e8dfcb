"""`broadcast` (split placement): learner rank 0 -> every engine over a torch.distributed group
of their own (`BroadcastSync`), and the group's parts.

The group joins learner rank 0 (rank 0) and the rollout engines' receivers (ranks 1..): the
rollout actor itself (`hf`), or each of a vLLM engine's workers, which receive on their own
device (`vllm_worker.eureka_receive_broadcast`). It stays apart from the learners' training
group: gloo on CPUs, NCCL on GPUs (the same calls). Each bucket travels as one flat byte
tensor; the layout (names, dtypes, shapes, byte offsets) is agreed once, when the group is
formed, since it never changes during a run.

Tested: the pure parts (layout, flatten, unflatten) on their own; the group by the
split-placement driver test (gloo, local Ray) and by tests/vllm/test_broadcast_receive.py
(gloo into vLLM's workers); NCCL needs GPUs (two of them: not in the one-GPU tier).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from eureka_trainer.backends import WeightBucket, bucketize
from eureka_trainer.sync.base import DEFAULT_BUCKET_BYTES, sync_metrics

GROUP_TIMEOUT = datetime.timedelta(minutes=10)
"""How long a rank waits for the others (a dead peer fails the sync after this, never hangs)."""


@dataclass(frozen=True)
class BucketLayout:
    """Where each tensor of a bucket lies in its flat byte buffer of `nbytes` bytes."""

    names: list[str]
    dtypes: list[str]
    shapes: list[tuple[int, ...]]
    offsets: list[int]
    nbytes: int


ALIGN = 16
"""Byte alignment of each tensor in a flat buffer (a view as any dtype needs its offset to be
a multiple of the element size)."""


def layout_of(bucket: WeightBucket) -> BucketLayout:
    """Where each tensor of `bucket` lies in its flat buffer (offsets aligned to `ALIGN`)."""
    offsets, position = [], 0
    for tensor in bucket.tensors:
        position = -(-position // ALIGN) * ALIGN
        offsets.append(position)
        position += tensor.numel() * tensor.element_size()
    return BucketLayout(
        names=list(bucket.names),
        dtypes=[str(t.dtype).removeprefix("torch.") for t in bucket.tensors],
        shapes=[tuple(t.shape) for t in bucket.tensors],
        offsets=offsets,
        nbytes=position,
    )


def layouts_of(named: Sequence[tuple[str, torch.Tensor]], bucket_bytes: int) -> list[BucketLayout]:
    """The byte layout of each bucket `bucketize` makes of `named`."""
    return [layout_of(bucket) for bucket in bucketize(named, bucket_bytes)]


def flatten(bucket: WeightBucket, layout: BucketLayout, device: Any = "cpu") -> torch.Tensor:
    """[layout.nbytes] uint8: each tensor's bytes at its offset (any mix of dtypes)."""
    buffer = torch.zeros(layout.nbytes, dtype=torch.uint8, device=device)
    for tensor, offset in zip(bucket.tensors, layout.offsets, strict=True):
        raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        buffer[offset : offset + raw.numel()].copy_(raw)
    return buffer


def unflatten(buffer: torch.Tensor, layout: BucketLayout) -> WeightBucket:
    """The bucket of `layout` as views into `buffer` ([nbytes] uint8)."""
    tensors = []
    for dtype, shape, offset in zip(layout.dtypes, layout.shapes, layout.offsets, strict=True):
        kind = getattr(torch, dtype)
        size = int(torch.Size(shape).numel()) * torch.empty(0, dtype=kind).element_size()
        tensors.append(buffer[offset : offset + size].view(kind).reshape(shape))
    return WeightBucket(list(layout.names), tensors)


def join_group(address: str, rank: int, size: int) -> Any:
    """This process' member of the broadcast group at `address` (`host:port`; rank 0 hosts
    the store). Blocks until all `size` ranks have joined."""
    import torch.distributed as dist

    host, _, port = address.rpartition(":")
    store = dist.TCPStore(  # type: ignore[attr-defined]
        host, int(port), size, is_master=rank == 0, timeout=GROUP_TIMEOUT, wait_for_workers=False
    )
    if torch.cuda.is_available():
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = GROUP_TIMEOUT
        return dist.ProcessGroupNCCL(store, rank, size, options)
    return dist.ProcessGroupGloo(store, rank, size, GROUP_TIMEOUT)


def device_of(group: Any) -> str:
    """Where the group's buffers must live (NCCL moves GPU memory only)."""
    return "cuda" if type(group).__name__ == "ProcessGroupNCCL" else "cpu"


def send_buckets(
    group: Any, named: Sequence[tuple[str, torch.Tensor]], bucket_bytes: int
) -> tuple[int, int]:
    """Rank 0: broadcast every bucket of `named`; (buckets, bytes of weights) sent (the
    alignment padding is not counted, so the figure compares with what the engines load)."""
    buckets = bucketize(named, bucket_bytes)
    for bucket in buckets:
        group.broadcast(flatten(bucket, layout_of(bucket), device_of(group)), 0).wait()
    return len(buckets), sum(bucket.nbytes for bucket in buckets)


def receive_buckets(group: Any, layouts: Sequence[BucketLayout]) -> list[WeightBucket]:
    """Ranks 1..E: receive every bucket of `layouts` (in order) from rank 0. All are kept
    until the engine loads them in one call: an engine may refuse an update that splits a
    fused layer (vLLM's q/k/v), which separate calls per bucket could do."""
    return [receive_bucket(group, layout) for layout in layouts]


def receive_bucket(group: Any, layout: BucketLayout) -> WeightBucket:
    """Ranks 1..E: the next bucket (of `layout`) from rank 0, on the group's device."""
    buffer = torch.empty(layout.nbytes, dtype=torch.uint8, device=device_of(group))
    group.broadcast(buffer, 0).wait()
    return unflatten(buffer, layout)


def layout_to_plain(layout: BucketLayout) -> dict[str, Any]:
    """A layout as msgpack-able data (vLLM's RPC to a worker process carries no dataclasses)."""
    return {**asdict(layout), "shapes": [list(shape) for shape in layout.shapes]}


def layout_from_plain(plain: dict[str, Any]) -> BucketLayout:
    return BucketLayout(**{**plain, "shapes": [tuple(shape) for shape in plain["shapes"]]})


def free_address() -> str:
    """`host:port` of this node with a port free now (rank 0 hosts the group's store there)."""
    import socket

    import ray

    with socket.socket() as sock:
        sock.bind(("", 0))
        port = int(sock.getsockname()[1])
    return f"{ray.util.get_node_ip_address()}:{port}"  # type: ignore[no-untyped-call]


class BroadcastSync:
    """Learner rank 0 broadcasts bucket by bucket to every engine over a group of their own
    (gloo on CPUs, NCCL on GPUs; the functions above), formed at the first push."""

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes
        self.joined = False

    def join(self, learners: Sequence[Any], engines: Sequence[Any]) -> None:
        import ray

        # Every learner rank takes part (ZeRO-3 gathers); rank 0's layout is the one sent.
        layouts = ray.get([lr.weight_layouts.remote(self.bucket_bytes) for lr in learners])[0]
        address = ray.get(learners[0].free_address.remote())
        # An engine joins with one member per process that receives (a vLLM engine: each of
        # its workers, ranks first..first+members-1); learner rank 0 is rank 0.
        members = ray.get([e.broadcast_members.remote() for e in engines])
        firsts = [1 + sum(members[:i]) for i in range(len(engines))]
        size = 1 + sum(members)
        # Joining blocks until every member has joined: all calls are in flight together.
        ray.get(
            [learners[0].join_broadcast.remote(address, size)]
            + [
                e.join_broadcast.remote(address, first, size, layouts)
                for e, first in zip(engines, firsts, strict=True)
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
