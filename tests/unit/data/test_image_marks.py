"""A record whose own text holds the processor's image mark (`<|image_pad|>` for Qwen-VL,
`<IMG_CONTEXT>` for InternVL, `<image>` for InternVL's remote-code chat checkpoints) is refused
with a `DataError` naming its `file:line`, alone or in a batch: the processor would read the mark
as one more image's place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.data import DataError, encode_prompt, parse_line
from eureka_trainer.data.batch_encode import encode_prompts
from eureka_trainer.models.tiny import build_tiny, build_tiny_model

from .conftest import message_line

LIMITS = {"max_prompt_length": 4096, "min_pixels": 56 * 56, "max_pixels": 112 * 112}
CASES = [
    ("qwen2_vl", "native"),
    ("qwen2_5_vl", "native"),
    ("qwen3_vl", "native"),
    ("internvl", "native"),
    ("internvl", "remote-code"),
]


def _processor(family: str, layout: str, folder: Path) -> Any:
    if layout == "native":
        return build_tiny(family).processor
    # The remote-code checkpoint has no processor: the trainer builds its own from the folder.
    from eureka_trainer.driver.prompts import load_processor

    build_tiny_model(family, folder / "model", layout=layout)
    return load_processor(str(folder / "model"), family, trust_remote_code=True)


def _line(i: int, text: str) -> str:
    obj = json.loads(message_line(i, "file://red.png"))
    messages = json.loads(obj["message"])
    messages[0]["content"][1]["text"] = text
    obj["message"] = json.dumps(messages)
    return json.dumps(obj)


@pytest.mark.parametrize(("family", "layout"), CASES)
def test_the_processors_image_mark_in_the_text_is_refused(
    folder: Path, family: str, layout: str
) -> None:
    processor = _processor(family, layout, folder)
    mark = processor.image_token
    lines = [_line(1, "How many?"), _line(2, f"How many {mark} here?"), _line(3, "Count.")]
    records = [
        parse_line(line, f"m.jsonl:{i + 1}", image_root=folder, family=family)
        for i, line in enumerate(lines)
    ]
    with pytest.raises(DataError, match=rf"m\.jsonl:2: the text contains {mark!r}") as caught:
        encode_prompt(records[1], processor, family=family, **LIMITS)
    assert caught.value.reason == "bad_field"
    batch = encode_prompts(records, processor, family=family, **LIMITS)
    assert [isinstance(b, DataError) for b in batch] == [False, True, False]
    assert str(batch[1]) == str(caught.value)


def test_another_familys_mark_is_plain_text(folder: Path) -> None:
    processor = _processor("internvl", "remote-code", folder)
    record = parse_line(
        _line(1, "What is <|image_pad|> here?"), "m.jsonl:1", image_root=folder, family="internvl"
    )
    assert encode_prompt(record, processor, family="internvl", **LIMITS).input_ids
