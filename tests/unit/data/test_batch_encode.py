"""One processor call for a batch of prompts gives every prompt exactly what `encode_prompt`
gives it alone (ids, patches, grids, token types, truncation), and a bad record still gets its
own error, family by family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.data import DataError, encode_prompt, parse_line
from eureka_trainer.data.batch_encode import SPLITS, encode_prompts
from eureka_trainer.models.families import MODEL_FAMILIES
from eureka_trainer.models.tiny import build_tiny

from .conftest import conv_line

_PROCESSORS: dict[str, Any] = {}


def _processor(family: str) -> Any:
    if family not in _PROCESSORS:
        _PROCESSORS[family] = build_tiny(family).processor
    return _PROCESSORS[family]


def _records(folder: Path, family: str) -> list[Any]:
    images = ["file://red.png", "file://big.png", None, "file://broken.png", "file://red.png"]
    out = []
    for i, image in enumerate(images):
        obj = json.loads(conv_line(i, None if family == "text" else image))
        obj["conversations"][1]["content"] = "Count them. " * (i + 1)
        out.append(
            parse_line(json.dumps(obj), f"b.jsonl:{i + 1}", image_root=folder, family=family)
        )
    return out


@pytest.mark.parametrize("family", list(MODEL_FAMILIES))
def test_batched_encoding_equals_one_by_one(folder: Path, family: str) -> None:
    processor = _processor(family)
    records = _records(folder, family)
    limits = {"max_prompt_length": 512, "min_pixels": 56 * 56, "max_pixels": 112 * 112}
    batched = encode_prompts(records, processor, family=family, **limits)
    assert len(batched) == len(records)
    for record, got in zip(records, batched, strict=True):
        try:
            alone = encode_prompt(record, processor, family=family, **limits)
        except DataError as error:
            assert isinstance(got, DataError) and str(got) == str(error)
            continue
        assert not isinstance(got, DataError), got
        assert got.input_ids == alone.input_ids and got.text == alone.text
        assert got.mm_inputs.keys() == alone.mm_inputs.keys()
        for key, value in alone.mm_inputs.items():
            assert torch.equal(got.mm_inputs[key], value), key
    if family != "text":
        assert isinstance(batched[3], DataError) and "b.jsonl:4" in str(batched[3])


def test_batched_truncation_equals_one_by_one(folder: Path) -> None:
    processor = _processor("qwen2_vl")
    records = _records(folder, "qwen2_vl")[:3]
    limits = {"max_prompt_length": 30, "min_pixels": 56 * 56, "max_pixels": 112 * 112}
    batched = encode_prompts(records, processor, family="qwen2_vl", **limits)
    alone = [encode_prompt(r, processor, family="qwen2_vl", **limits) for r in records]
    assert [b.input_ids for b in batched] == [a.input_ids for a in alone]  # type: ignore[union-attr]
    assert any(a.truncated for a in alone)


def test_the_qwen_families_are_batched() -> None:
    assert {"qwen2_vl", "qwen2_5_vl", "qwen3_vl"} <= set(SPLITS.names())
