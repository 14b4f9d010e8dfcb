"""The CUDA IPC weight transport (`sync.cuda_ipc`) between two processes on one GPU: the
receiver reads the exporter's buffers exactly, with the handles sent as plain data (msgpack, as
vLLM's RPC sends them). Its throughput goes to the figures."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(300)
SEVEN_B_BYTES = 15.2e9  # Qwen2.5-VL-7B's weights in bf16


def checksum(tensor: Any) -> int:
    """Exact: the sum of the tensor's bytes, weighted by position mod 251."""
    import torch

    raw = tensor.contiguous().reshape(-1).view(torch.uint8).to(torch.int64)
    weights = torch.arange(raw.numel(), device=raw.device, dtype=torch.int64) % 251 + 1
    return int((raw * weights).sum())


def receiver(wire: bytes, results: Any) -> None:
    """Child process: open every bucket, copy it into tensors of its own (as a vLLM worker's
    reload does), answer (name, checksum) pairs and the seconds it took."""
    import msgpack
    import torch

    from eureka_trainer.sync.cuda_ipc import IpcBucket, open_bucket

    torch.cuda.set_device(0)
    buckets = [IpcBucket.from_plain(p) for p in msgpack.unpackb(wire, raw=False)]
    start = time.perf_counter()
    sums = []
    for bucket in buckets:
        opened = open_bucket(bucket, 0)
        for name, tensor in zip(opened.names, opened.tensors, strict=True):
            own = tensor.clone()
            sums.append((name, checksum(own), str(own.dtype), list(own.shape)))
    torch.cuda.synchronize()
    results.put((sums, time.perf_counter() - start))


def test_a_second_process_reads_the_exported_weights(figures: dict[str, Any]) -> None:
    import msgpack
    import torch
    import torch.multiprocessing as mp

    from eureka_trainer.sync.cuda_ipc import IpcExporter

    generator = torch.Generator(device="cuda").manual_seed(0)
    named = [
        (
            f"layers.{i}.weight",
            torch.randn(4096, 4096, device="cuda", generator=generator).to(torch.bfloat16),
        )
        for i in range(64)  # 2 GiB in bf16
    ] + [("norm.bias", torch.randn(7, device="cuda", generator=generator))]  # float32, unaligned
    exporter = IpcExporter()
    buckets = exporter.export(named, 256 << 20)
    wire = msgpack.packb([b.to_plain() for b in buckets])
    context = mp.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=receiver, args=(wire, results))
    child.start()
    sums, seconds = results.get(timeout=240)
    child.join(timeout=60)
    exporter.release()
    assert child.exitcode == 0
    expected = [(n, checksum(t), str(t.dtype), list(t.shape)) for n, t in named]
    assert sums == expected
    nbytes = sum(t.numel() * t.element_size() for _, t in named)
    figures["cuda_ipc_one_gpu"] = {
        "gib": round(nbytes / 2**30, 2),
        "seconds": round(seconds, 3),
        "gb_per_s": round(nbytes / seconds / 1e9, 1),
        "seconds_for_7b_bf16_extrapolated": round(SEVEN_B_BYTES / (nbytes / seconds), 2),
    }
