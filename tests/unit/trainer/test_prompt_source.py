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
