"""Encoding with each family's own processor (the tiny models' processors, saved and loaded
back): image rules, the blank image, truncation that never cuts an image span, and a forward
of the encoded prompts through the family's tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.data import collate_prompts, encode_prompt, parse_line
from eureka_trainer.models.families import model_family
from eureka_trainer.models.loading import load_processor
from eureka_trainer.models.tiny import build_tiny_model

from .conftest import conv_line

_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    def get(family: str) -> tuple[Path, Any, Any]:
        if family not in _BUILT:
            folder = tmp_path_factory.mktemp(family)
            model = build_tiny_model(family, folder).model
            _BUILT[family] = (folder, model, load_processor(folder, family))
        return _BUILT[family]  # type: ignore[no-any-return]

    return get


def _record(folder: Path, family: str, image: str | None, system: str = "Think first.") -> Any:
    obj = json.loads(conv_line(1, image))
    obj["conversations"][0]["content"] = system
    return parse_line(json.dumps(obj), "train.jsonl:7", image_root=folder, family=family)


def test_internvl_text_only_prompt_gets_one_blank_tile(folder: Path, family_dir: Any) -> None:
    _, _, processor = family_dir("internvl")
    out = encode_prompt(
        _record(folder, "internvl", None), processor, family="internvl", max_prompt_length=256
    )
    tok = processor.tokenizer
    assert [im.size for im in out.images] == [(224, 224)]
    assert out.mm_inputs["pixel_values"].shape == (1, 3, 56, 56)  # square: one tile
    assert out.input_ids.count(tok.context_image_token_id) == processor.image_seq_length
    assert "mm_token_type_ids" not in out.mm_inputs


def test_internvl_truncation_keeps_the_whole_image_span(folder: Path, family_dir: Any) -> None:
    _, _, processor = family_dir("internvl")
    rec = _record(folder, "internvl", "file://big.png", system="A long system prompt. " * 8)
    full = encode_prompt(rec, processor, family="internvl", max_prompt_length=512)
    cut = encode_prompt(
        rec, processor, family="internvl", max_prompt_length=len(full.input_ids) - 15
    )
    tok = processor.tokenizer
    span = {tok.start_image_token_id, tok.context_image_token_id, tok.end_image_token_id}
    assert cut.num_truncated == 15
    assert [t for t in cut.input_ids if t in span] == [t for t in full.input_ids if t in span]


@pytest.mark.parametrize(("family", "tokens"), [("qwen2_5_vl", 4), ("qwen3_vl", 4)])
def test_qwen_family_pixel_bounds(folder: Path, family_dir: Any, family: str, tokens: int) -> None:
    """`minPixels`/`maxPixels` reach the family's image processor: 56x56 at 56*56 pixels is
    2x2 merged tokens of 28 (Qwen2.5-VL); at 64*64 it is 2x2 tokens of 32 (Qwen3-VL)."""
    _, _, processor = family_dir(family)
    side = 56 if family == "qwen2_5_vl" else 64
    out = encode_prompt(
        _record(folder, family, "file://red.png"),
        processor,
        family=family,
        max_prompt_length=256,
        min_pixels=side * side,
        max_pixels=side * side,
    )
    assert int(out.mm_inputs["mm_token_type_ids"].sum()) == tokens
    assert out.input_ids.count(processor.image_token_id) == tokens


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "internvl"])
def test_collated_prompts_run_through_the_family_model(
    folder: Path, family_dir: Any, family: str
) -> None:
    """Two prompts (an image, and text only) collated for one forward give each prompt's own
    last-token logits; inputs the family's forward does not take are never produced."""
    _, model, processor = family_dir(family)
    prompts = [
        encode_prompt(_record(folder, family, im), processor, family=family, max_prompt_length=256)
        for im in ("file://red.png", None)
    ]
    batch = collate_prompts(prompts, processor.tokenizer.pad_token_id)
    assert ("mm_token_type_ids" in batch) == model_family(family).token_types
    with torch.no_grad():
        together = model(**batch).logits[:, -1]
        for row, prompt in enumerate(prompts):
            alone = collate_prompts([prompt], processor.tokenizer.pad_token_id)
            torch.testing.assert_close(
                together[row], model(**alone).logits[0, -1], atol=1e-4, rtol=1e-4
            )
