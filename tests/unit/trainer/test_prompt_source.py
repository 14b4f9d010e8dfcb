"""The driver's prompt source: a prompt the encoder refuses obeys `badLines` (fail or skip + count)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from eureka_trainer.config import DataSpec
from eureka_trainer.data import DataError
from eureka_trainer.data.tiny import build_tiny_processor
from eureka_trainer.driver.prompts import PromptSource


def _write_data(folder: Path) -> str:
    Image.new("RGB", (112, 112), "red").save(folder / "big.png")
    rows = [
        {
            "id": "img",
            "conversations": [{"role": "user", "content": "<image>\nHow many?"}],
            "answer": "1",
            "image_urls": [f"file://{folder / 'big.png'}"],
        },
        {"id": "txt", "conversations": [{"role": "user", "content": "1+1?"}], "answer": "2"},
    ]
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _source(folder: Path, bad_lines: str) -> PromptSource:
    file = _write_data(folder)
    data = DataSpec(
        train_files=[file],
        max_prompt_length=16,  # the image's 16 pads + 2 markers alone exceed it
        min_pixels=112 * 112,
        max_pixels=112 * 112,
        bad_lines=bad_lines,  # type: ignore[arg-type]
        shuffle=False,
    )
    return PromptSource(data, [file], build_tiny_processor(), "qwen2_vl", seed=0)


def test_refused_prompt_fails_the_job_under_fail(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.jsonl:1: .*image tokens alone exceed"):
        _source(tmp_path, "fail").next_batch(2)


def test_refused_prompt_is_skipped_counted_and_replaced_under_skip(tmp_path: Path) -> None:
    source = _source(tmp_path, "skip")
    items = source.next_batch(2)
    assert [item.prompt_id for item in items] == ["txt", "txt"]  # refill crosses the epoch
    assert source.refused >= 1
    assert source.state_dict()["refused"] == source.refused


def _plain_source(folder: Path, rows: int = 6) -> PromptSource:
    lines = [
        {"id": f"q{i}", "conversations": [{"role": "user", "content": f"{i}+1?"}], "answer": "1"}
        for i in range(rows)
    ]
    path = folder / "plain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    data = DataSpec(train_files=[str(path)], max_prompt_length=64, shuffle=True)
    return PromptSource(data, [str(path)], build_tiny_processor(), "qwen2_vl", seed=3)


def _ids(items: list) -> list[str]:
    return [item.prompt_id for item in items]


def test_prefetched_batches_are_the_batches_encoded_in_order(tmp_path: Path) -> None:
    plain, ahead = _plain_source(tmp_path), _plain_source(tmp_path)
    expected = [_ids(plain.next_batch(4)) for _ in range(3)]
    got = []
    for _ in range(3):
        ahead.prefetch(4)
        ahead.settle()
        got.append(_ids(ahead.next_batch(4)))
    assert got == expected


def test_a_checkpoint_during_a_prefetch_records_the_position_before_it(tmp_path: Path) -> None:
    source = _plain_source(tmp_path)
    first = _ids(source.next_batch(4))
    state = source.state_dict()
    source.prefetch(4)
    source.settle()
    assert source.state_dict() == state  # the prefetched batch is not consumed yet
    taken = _ids(source.next_batch(4))
    resumed = _plain_source(tmp_path)
    resumed.load_state_dict(state)
    assert _ids(resumed.next_batch(4)) == taken and first != taken


def test_a_prefetch_of_another_size_is_undone(tmp_path: Path) -> None:
    plain, ahead = _plain_source(tmp_path), _plain_source(tmp_path)
    ahead.prefetch(4)
    assert _ids(ahead.next_batch(2)) == _ids(plain.next_batch(2))
    assert _ids(ahead.next_batch(4)) == _ids(plain.next_batch(4))


def test_a_prefetch_error_comes_with_next_batch(tmp_path: Path) -> None:
    source = _source(tmp_path, "fail")
    source.prefetch(2)
    source.settle()  # does not raise: the error belongs to the step that takes the batch
    with pytest.raises(DataError, match=r"train\.jsonl:1: .*image tokens alone exceed"):
        source.next_batch(2)
