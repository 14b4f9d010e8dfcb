"""`cuda_ipc` (colocated placement on GPUs): the engines read the learner's weights straight
from its GPU memory, nothing is copied through host memory or serialised.

Every learner rank flattens each bucket into one byte buffer on its own GPU (the layout of
`sync.broadcast`) and exports it with CUDA IPC (`torch.multiprocessing.reductions`); the
handles of all ranks are merged by GPU UUID, so each vLLM worker opens the buffer that lies on
its own GPU, whatever the tensor parallel size. The engine loads the views into its layers
(inside vLLM's worker: `vllm_worker.eureka_load_bucket_ipc`), then the learners drop their
buffers. Keyed by GPU UUID like vLLM 0.32's own IPC engine
(vllm/distributed/weight_transfer/ipc_engine.py), whose handles are the same
`reduce_tensor` arguments.

Memory: during the sync each learner rank holds one flat copy of the full weights on its GPU
(plus, at ZeRO-3, the gathered tensors it flattens), released once the engines loaded them.

The handles travel as plain data (`IpcBucket.to_plain`: ints, lists, bytes): vLLM's RPC to a
worker in another process serialises with msgpack, which carries no Python classes.

Verified: the plain form round trip here (CPU); opening a buffer in a second process on the
same GPU in `tests/gpu` (needs a GPU).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eureka_trainer.backends import WeightBucket
from eureka_trainer.sync.base import DEFAULT_BUCKET_BYTES, sync_metrics
from eureka_trainer.sync.broadcast import BucketLayout

HANDLE_FIELDS = (
    "size",
    "stride",
    "offset",
    "storage",
    "dtype",
    "device",
    "handle",
    "storage_bytes",
    "storage_offset",
    "requires_grad",
    "ref_handle",
    "ref_offset",
    "event_handle",
    "event_sync",
)
"""`rebuild_cuda_tensor`'s arguments after the tensor class (torch/multiprocessing/reductions.py)."""


def handle_to_plain(args: Sequence[Any]) -> dict[str, Any]:
    """`reduce_tensor(t)[1]` of a CUDA tensor -> plain data (classes and dtypes by name)."""
    tensor_cls, *rest = args
    if tensor_cls.__name__ not in ("Tensor", "Parameter"):
        raise TypeError(f"cannot share a {tensor_cls.__name__} over CUDA IPC")
    plain = dict(zip(HANDLE_FIELDS, rest, strict=True))
    plain["size"], plain["stride"] = list(plain["size"]), list(plain["stride"])
    plain["storage"] = plain["storage"].__name__
    plain["dtype"] = str(plain["dtype"]).removeprefix("torch.")
    return plain


def handle_from_plain(plain: dict[str, Any], device_index: int) -> tuple[Any, ...]:
    """`rebuild_cuda_tensor` arguments from `handle_to_plain`, on this process' `device_index`
    (the exporter's index may differ: CUDA_VISIBLE_DEVICES differs between processes)."""
    import torch

    storages = {"TypedStorage": torch.storage.TypedStorage, "UntypedStorage": torch.UntypedStorage}
    fields = dict(plain)
    fields.update(
        size=torch.Size(plain["size"]),
        stride=tuple(plain["stride"]),
        storage=storages[plain["storage"]],
        dtype=getattr(torch, plain["dtype"]),
        device=device_index,
    )
    return (torch.Tensor, *(fields[name] for name in HANDLE_FIELDS))


@dataclass(frozen=True)
class IpcBucket:
    """One bucket in a flat GPU byte buffer: its layout, and per GPU UUID the handle that
    opens that GPU's copy in another process."""

    layout: BucketLayout
    handles: dict[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return self.layout.names

    @property
    def nbytes(self) -> int:
        """Bytes of the weights (not the alignment padding)."""
        import torch

        return sum(
            int(torch.Size(shape).numel()) * torch.empty(0, dtype=getattr(torch, dt)).element_size()
            for shape, dt in zip(self.layout.shapes, self.layout.dtypes, strict=True)
        )

    def to_plain(self) -> dict[str, Any]:
        return {"layout": asdict(self.layout), "handles": self.handles}

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> IpcBucket:
        layout = dict(plain["layout"])
        layout["shapes"] = [tuple(s) for s in layout["shapes"]]
        return cls(BucketLayout(**layout), dict(plain["handles"]))


def merge(parts: Sequence[Sequence[IpcBucket]]) -> list[IpcBucket]:
    """The buckets of every rank as one list: the handles of each bucket joined by GPU UUID
    (every rank exports the same layouts: the full weights, bucketed alike)."""
    parts = [p for p in parts if p]
    if not parts:
        return []
    merged = []
    for index, first in enumerate(parts[0]):
        handles: dict[str, dict[str, Any]] = {}
        for part in parts:
            if part[index].layout != first.layout:
                raise ValueError(f"bucket {index}: learner ranks export different layouts")
            handles.update(part[index].handles)
        merged.append(IpcBucket(first.layout, handles))
    return merged


def gpu_uuid(device_index: int) -> str:
    """The physical GPU's UUID (the same in every process, whatever its visible devices)."""
    import torch

    return str(torch.cuda.get_device_properties(device_index).uuid)


class IpcExporter:
    """A learner rank's side: exports buckets and keeps their buffers alive until `release`."""

    def __init__(self) -> None:
        self.buffers: list[Any] = []

    def export(self, named: Sequence[tuple[str, Any]], bucket_bytes: int) -> list[IpcBucket]:
        import torch
        from torch.multiprocessing.reductions import reduce_tensor

        from eureka_trainer.backends import bucketize
        from eureka_trainer.sync.broadcast import flatten, layout_of

        device = torch.device("cuda", torch.cuda.current_device())
        uuid = gpu_uuid(device.index)
        out = []
        for bucket in bucketize(named, bucket_bytes):
            layout = layout_of(bucket)
            buffer = flatten(bucket, layout, device)
            self.buffers.append(buffer)
            shared = reduce_tensor(buffer)  # type: ignore[no-untyped-call]
            out.append(IpcBucket(layout, {uuid: handle_to_plain(shared[1])}))
        torch.cuda.synchronize(device)  # the readers must see the copies
        return out

    def release(self) -> None:
        """Drop the buffers (call once every engine has loaded them) and hand their memory
        back to the driver: vLLM's KV cache wakes next and needs it."""
        import torch

        self.buffers.clear()
        if torch.cuda.is_available():
            torch.cuda.ipc_collect()  # type: ignore[no-untyped-call]  # blocks the readers closed
            torch.cuda.empty_cache()


def open_bucket(bucket: IpcBucket, device_index: int) -> WeightBucket:
    """The bucket as views into the exporter's buffer on this process' GPU `device_index`."""
    from torch.multiprocessing.reductions import rebuild_cuda_tensor

    from eureka_trainer.sync.broadcast import unflatten

    uuid = gpu_uuid(device_index)
    if uuid not in bucket.handles:
        raise ValueError(
            f"no learner rank exported weights on GPU {uuid} (exported on: "
            f"{', '.join(sorted(bucket.handles))}); CUDA IPC needs a learner rank on every "
            "GPU of a colocated engine"
        )
    args = handle_from_plain(bucket.handles[uuid], device_index)
    buffer = rebuild_cuda_tensor(*args)  # type: ignore[no-untyped-call]
    return unflatten(buffer, bucket.layout)


class CudaIpcSync:
    """Colocated engines read each learner rank's exported buffers on their own GPU."""

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes

    def push(self, learners: Sequence[Any], engines: Sequence[Any]) -> dict[str, float]:
        import ray

        start = time.perf_counter()
        # Every rank gathers (ZeRO-3) and exports the full weights on its own GPU.
        parts = ray.get([lr.export_ipc.remote(self.bucket_bytes) for lr in learners])
        buckets = merge(parts)
        try:
            loaded = ray.get([e.load_weights.remote(buckets) for e in engines])
        finally:
            ray.get([lr.release_ipc.remote() for lr in learners])
        count, nbytes = loaded[0] if loaded else (0, 0)
        return sync_metrics(start, count, nbytes)
