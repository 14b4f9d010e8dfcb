"""Weight sync learner -> rollout engines, in buckets (never one call per parameter).

One interface (`WeightSync.push(learners, engines) -> sync/* metrics`), one module per
transport, each registered by path and imported when chosen:

| method | module | when |
| --- | --- | --- |
| `in_process` | `in_process` | hybrid actors (`hf` engine in the learner's process) |
| `object_store` | `object_store` | colocated without GPUs (Ray's object store, any machine) |
| `cuda_ipc` | `cuda_ipc` | colocated `vllm` engines on GPUs (the learner's GPU memory) |
| `broadcast` | `broadcast` | split placement (gloo on CPUs, NCCL on GPUs) |

`choose_method` is the driver's rule. What is verified where: docs/trainer.md.
"""

from __future__ import annotations

from typing import Any

from eureka_trainer.registry import Registry, load_class
from eureka_trainer.sync.base import DEFAULT_BUCKET_BYTES, WeightSync, sync_metrics

SYNC_METHODS: Registry[str] = Registry("weight sync method")
SYNC_METHODS.add("object_store", "eureka_trainer.sync.object_store:ObjectStoreSync")
SYNC_METHODS.add("in_process", "eureka_trainer.sync.in_process:InProcessSync")
SYNC_METHODS.add("broadcast", "eureka_trainer.sync.broadcast:BroadcastSync")
SYNC_METHODS.add("cuda_ipc", "eureka_trainer.sync.cuda_ipc:CudaIpcSync")


def make_sync(method: str = "object_store", **kwargs: Any) -> WeightSync:
    """The weight sync registered under `method`."""
    sync: WeightSync = load_class(SYNC_METHODS.get(method))(**kwargs)
    return sync


IPC_BACKENDS = frozenset({"vllm"})
"""Rollout backends whose engines open CUDA IPC handles (`load_weights` of `IpcBucket`s)."""


def choose_method(*, hybrid: bool, colocated: bool, gpus: bool, rollout_backend: str) -> str:
    """The transport of a layout: in the process for hybrids, the learner's GPU memory for
    colocated vLLM on GPUs, the object store for other colocated engines, else broadcast."""
    if hybrid:
        return "in_process"
    if not colocated:
        return "broadcast"
    return "cuda_ipc" if gpus and rollout_backend in IPC_BACKENDS else "object_store"


__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "SYNC_METHODS",
    "WeightSync",
    "choose_method",
    "make_sync",
    "sync_metrics",
]
