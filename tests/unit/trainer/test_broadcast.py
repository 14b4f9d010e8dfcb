"""The pure parts of the weight broadcast: bucket layouts and the flat byte buffers."""

from __future__ import annotations

import torch

from eureka_trainer.backends import WeightBucket
from eureka_trainer.sync.broadcast import flatten, layouts_of, unflatten


def _named() -> list[tuple[str, torch.Tensor]]:
    return [
        ("a.weight", torch.arange(6, dtype=torch.float32).reshape(2, 3)),
        ("b.bias", torch.tensor([1.5, -2.0], dtype=torch.bfloat16)),
        ("c.steps", torch.tensor([7], dtype=torch.int64)),
        ("d.weight", torch.randn(4, 4)),
    ]


def test_flatten_then_unflatten_gives_every_tensor_back_with_its_dtype() -> None:
    named = _named()
    layouts = layouts_of(named, bucket_bytes=1 << 20)
    assert len(layouts) == 1
    sent = WeightBucket([n for n, _ in named], [t for _, t in named])
    bucket = unflatten(flatten(sent, layouts[0]), layouts[0])
    assert bucket.names == [n for n, _ in named]
    for got, (_, want) in zip(bucket.tensors, named, strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


def test_layouts_follow_the_bucket_size_and_byte_offsets() -> None:
    layouts = layouts_of(_named(), bucket_bytes=32)  # 24 + 4 + 8 + 64 bytes
    assert [lay.names for lay in layouts] == [["a.weight", "b.bias"], ["c.steps"], ["d.weight"]]
    assert layouts[0].offsets == [0, 32] and layouts[0].nbytes == 36  # 16-byte aligned
    assert layouts[2].shapes == [(4, 4)] and layouts[2].dtypes == ["float32"]


def test_send_reports_the_weights_bytes_not_the_alignment_padding() -> None:
    """A one-rank gloo group: sender and receiver agree on the bytes (the driver compares them)."""
    import socket

    from eureka_trainer.sync.broadcast import join_group, receive_buckets, send_buckets

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    group = join_group(f"127.0.0.1:{port}", 0, 1)
    named = _named()  # the 4-byte bf16 bias leaves padding before the next tensor
    buckets, sent = send_buckets(group, named, bucket_bytes=1 << 20)
    payload = sum(t.numel() * t.element_size() for _, t in named)
    assert (buckets, sent) == (1, payload)
    received = receive_buckets(group, layouts_of(named, 1 << 20))  # rank 0 receives its own
    assert sum(b.nbytes for b in received) == payload
