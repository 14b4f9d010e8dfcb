"""Prompt encoding with the tiny local processor: image tokens, pixel bounds, truncation,
and a real (tiny) Qwen2-VL forward on the result."""

from __future__ import annotations

import json
import time

import pytest
import torch

from eureka_trainer.data import (
    DataError,
    PromptEncoder,
    build_tiny_processor,
    collate_prompts,
    encode_prompt,
    keep_positions,
    parse_line,
)
from eureka_trainer.data.tiny import TAG_TOKENS, build_tiny_tokenizer

from .conftest import conv_line


@pytest.fixture(scope="module")
def processor():
    return build_tiny_processor()


def record(folder, image=None, family="qwen2_5_vl", system="Think first.", **extra):
    obj = json.loads(conv_line(1, image, **extra))
    obj["conversations"][0]["content"] = system
    return parse_line(json.dumps(obj), "train.jsonl:3", image_root=folder, family=family)


def encode(rec, processor, limit=512, family="qwen2_5_vl", **pixels):
    return encode_prompt(rec, processor, family=family, max_prompt_length=limit, **pixels)


def pads(processor, ids):
    return [i for i, t in enumerate(ids) if t == processor.image_token_id]


def test_image_prompt(folder, processor):
    out = encode(record(folder, "file://red.png"), processor)
    assert out.text.startswith("<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\n")
    assert out.text.endswith("<|im_start|>assistant\n")
    assert len(pads(processor, out.input_ids)) == 4  # 56x56, patch 14, merge 2
    assert out.mm_inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert out.mm_inputs["pixel_values"].shape == (16, 3 * 2 * 14 * 14)
    mm_types = out.mm_inputs["mm_token_type_ids"]
    assert mm_types.shape == (len(out.input_ids),)
    assert mm_types.nonzero().flatten().tolist() == pads(processor, out.input_ids)
    assert [im.size for im in out.images] == [(56, 56)]
    assert not out.truncated and out.num_truncated == 0
    assert out.source == "train.jsonl:3" and out.record_id == "c1"


def test_text_only_prompt_has_no_pixels(folder, processor):
    out = encode(record(folder), processor)
    assert "pixel_values" not in out.mm_inputs and out.images == []
    assert pads(processor, out.input_ids) == []


def test_pixel_bounds_change_the_image_grid(folder, processor):
    rec = record(folder, "file://big.png")  # 112x112
    small = encode(rec, processor, min_pixels=28 * 28, max_pixels=56 * 56)
    large = encode(rec, processor, min_pixels=28 * 28, max_pixels=112 * 112)
    assert small.mm_inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert large.mm_inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert len(pads(processor, large.input_ids)) == 16
    upscaled = encode(record(folder, "file://red.png"), processor, min_pixels=112 * 112)
    assert upscaled.mm_inputs["image_grid_thw"].tolist() == [[1, 8, 8]]


def test_truncation_cuts_text_from_the_left_never_image_tokens(folder, processor):
    rec = record(folder, "file://red.png", system="A long system prompt. " * 8)
    full = encode(rec, processor)
    limit = len(full.input_ids) - 20
    cut = encode(rec, processor, limit=limit)
    assert cut.truncated and cut.num_truncated == 20 and len(cut.input_ids) == limit
    assert full.input_ids[-(limit - 10) :] == cut.input_ids[-(limit - 10) :]  # the end is kept
    vision = {
        processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>")
    }
    assert [t for t in cut.input_ids if t in vision] == [t for t in full.input_ids if t in vision]
    assert len(pads(processor, cut.input_ids)) == 4
    mm_types = cut.mm_inputs["mm_token_type_ids"]
    assert mm_types.shape == (limit,)
    assert mm_types.nonzero().flatten().tolist() == pads(processor, cut.input_ids)
    assert torch.equal(cut.mm_inputs["pixel_values"], full.mm_inputs["pixel_values"])


def test_prompt_whose_image_tokens_exceed_the_limit_is_refused(folder, processor):
    rec = record(folder, "file://big.png")
    with pytest.raises(
        DataError, match=r"^train\.jsonl:3: the image tokens alone exceed"
    ) as caught:
        encode(rec, processor, limit=10, max_pixels=112 * 112)  # 16 pads + 2 markers
    assert caught.value.reason == "too_long"


def test_prompt_encoder_counts_truncations_and_refusals(folder, processor):
    encoder = PromptEncoder(processor, family="qwen2_5_vl", max_prompt_length=40)
    encoder.encode(record(folder, "file://red.png", system="x " * 30))
    encoder.encode(record(folder, "file://red.png", system="x"))
    with pytest.raises(DataError):
        encoder.encode(record(folder, "file://broken.png"))
    encoder.max_prompt_length, encoder.max_pixels = 8, 112 * 112
    with pytest.raises(DataError):
        encoder.encode(record(folder, "file://big.png"))
    metrics = encoder.metrics()
    assert metrics["data/truncated"] == 1 and metrics["data/truncated_tokens"] > 0
    assert metrics["data/refused/bad_image"] == 1 and metrics["data/refused/too_long"] == 1


def test_keep_positions():
    protected = {9}
    assert keep_positions([1, 2, 3], protected, 5) == [0, 1, 2]
    assert keep_positions([1, 9, 9, 2, 3, 4], protected, 4) == [1, 2, 4, 5]
    assert keep_positions([9, 9, 9, 1], protected, 2) is None


def test_text_family_with_a_plain_tokenizer(folder):
    tokenizer = build_tiny_tokenizer()
    rec = record(folder, family="text")
    out = encode(rec, tokenizer, family="text")
    assert (
        out.text
        == "<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\nQuestion 1?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert out.input_ids == tokenizer(out.text, add_special_tokens=False).input_ids
    assert out.mm_inputs == {}


def test_tiny_processor_is_deterministic_fast_and_extensible():
    start = time.perf_counter()
    a = build_tiny_processor()
    elapsed = time.perf_counter() - start
    b = build_tiny_processor()
    assert elapsed < 2.0
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    text = "<think>two circles</think><answer>2</answer>"
    assert a.tokenizer(text).input_ids == b.tokenizer(text).input_ids
    for tag in TAG_TOKENS:
        assert len(a.tokenizer(tag).input_ids) == 1
        assert a.tokenizer.decode(a.tokenizer(tag).input_ids, skip_special_tokens=True) == tag
    word = "parallelogram"
    assert len(a.tokenizer(word).input_ids) > 1
    c = build_tiny_processor([word] * 20)
    assert len(c.tokenizer(word).input_ids) < len(a.tokenizer(word).input_ids)


@pytest.fixture(scope="module")
def tiny_model(processor):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    tok = processor.tokenizer
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "rope_theta": 1e4,
            },
            "bos_token_id": None,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
    )
    torch.manual_seed(0)
    return Qwen2VLForConditionalGeneration(config).eval()


def forward(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_encoded_prompt_runs_through_a_tiny_qwen2_vl(folder, processor, tiny_model):
    rec = record(folder, "file://big.png", system="A long system prompt. " * 8)
    for limit in (512, 40):  # whole, and truncated around the image
        out = encode(rec, processor, limit=limit, family="qwen2_vl")
        logits = forward(tiny_model, collate_prompts([out], processor.tokenizer.pad_token_id))
        assert logits.shape == (1, len(out.input_ids), len(processor.tokenizer))
        assert torch.isfinite(logits).all()


def test_collated_batch_matches_prompts_run_alone(folder, processor, tiny_model):
    prompts = [
        encode(record(folder, "file://big.png"), processor, family="qwen2_vl"),
        encode(record(folder, system="A much longer system prompt. " * 3), processor),
        encode(record(folder, "file://red.png", system="x"), processor),
    ]
    pad = processor.tokenizer.pad_token_id
    batch = collate_prompts(prompts, pad)
    width = max(len(p.input_ids) for p in prompts)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, width)
    assert batch["mm_token_type_ids"].shape == (3, width)
    assert batch["image_grid_thw"].tolist() == [[1, 8, 8], [1, 4, 4]]
    assert batch["pixel_values"].shape[0] == 64 + 16
    short = min(range(3), key=lambda i: len(prompts[i].input_ids))
    assert len(prompts[short].input_ids) < width
    assert batch["input_ids"][short, 0] == pad and batch["attention_mask"][short, 0] == 0
    together = forward(tiny_model, batch)[:, -1]
    for row, prompt in enumerate(prompts):
        alone = forward(tiny_model, collate_prompts([prompt], pad))[:, -1]
        torch.testing.assert_close(together[row : row + 1], alone, atol=1e-4, rtol=1e-4)
    right = collate_prompts(prompts, pad, padding_side="right")
    assert right["attention_mask"][short, -1] == 0 and right["input_ids"][short, -1] == pad
    assert torch.equal(right["mm_token_type_ids"].sum(1), batch["mm_token_type_ids"].sum(1))


def test_encoder_from_spec(processor):
    from eureka_trainer.config.spec import DataSpec

    spec = DataSpec(train_files=["x.jsonl"], max_prompt_length=64, min_pixels=100, max_pixels=9000)
    encoder = PromptEncoder.from_spec(processor, spec, family="qwen2_vl")
    assert (encoder.max_prompt_length, encoder.min_pixels, encoder.max_pixels) == (64, 100, 9000)
    assert encoder.family == "qwen2_vl"
