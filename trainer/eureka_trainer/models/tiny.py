"""Tiny random models of every supported family, built from configs (no downloads).

`build_tiny_model(family, folder)` writes a model folder that loads like a hub checkpoint of
that family (`model.name: <folder>`): random weights (a seed), the locally trained tokenizer,
the family's processor with its PIL image processor, a chat template, and a generation
config. `eureka tiny-model` runs it; tests and benchmarks use it. Sizes suit a CPU and the
vLLM CPU build (attention head size 32, which its kernels take); embeddings are tied, as in
small Qwen models (a tied LM head is a weight-sync trap worth testing).

Image geometry (so a small image is a handful of tokens):
- Qwen2-VL / Qwen2.5-VL: patch 14, merge 2 -> one token per 28x28 pixels.
- Qwen3-VL: patch 16, merge 2 -> one token per 32x32 pixels.
- InternVL: 56x56 tiles, patch 14, pixel-shuffle 0.5 -> 4 tokens per tile, at most 2 tiles
  plus a thumbnail (the real models: 448x448 tiles, 256 tokens, up to 12 tiles).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eureka_trainer.models.tokenizer import (
    CHAT_TEMPLATE,
    INTERNVL_CHAT_TEMPLATE,
    build_tiny_tokenizer,
)
from eureka_trainer.registry import Registry

HIDDEN = 128
TEXT_LAYERS = {
    "hidden_size": HIDDEN,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
VISION_WIDTH = 64
VISION_HEADS = 2  # head size 32
INTERNVL_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
INTERNVL_TILE = 56


@dataclass(frozen=True)
class TinyOptions:
    """What every builder takes: the seed of the random weights, extra tokenizer text, the
    context length, and the Qwen pixel bounds of the saved image processor."""

    seed: int = 0
    vocab_texts: tuple[str, ...] = ()
    max_positions: int = 1024
    vision_heads: int = VISION_HEADS
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112


@dataclass
class TinyModel:
    """A built model (eval mode) and its processor (the tokenizer for `text`)."""

    model: Any
    processor: Any

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return folder


def _special_ids(tokenizer: Any) -> dict[str, Any]:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "bos_token_id": ids("<|im_start|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
    }


def _qwen_token_ids(tokenizer: Any) -> dict[str, Any]:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def _text_config(tokenizer: Any, options: TinyOptions, **extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": options.max_positions,
        "tie_word_embeddings": True,
        **TEXT_LAYERS,
        **_special_ids(tokenizer),
        **extra,
    }


def qwen_image_processor(options: TinyOptions, patch: int) -> Any:
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": options.min_pixels, "longest_edge": options.max_pixels},
    )


def _qwen_processor(class_name: str, options: TinyOptions, patch: int) -> Any:
    import transformers

    from eureka_trainer.models.processors import build_image_only

    tokenizer = build_tiny_tokenizer(options.vocab_texts)
    return build_image_only(
        getattr(transformers, class_name),
        qwen_image_processor(options, patch),
        tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _finish(model: Any, tokenizer: Any) -> Any:
    ids = _special_ids(tokenizer)
    model.generation_config.eos_token_id = ids["eos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    return model.eval()


def build_qwen2_vl(options: TinyOptions) -> TinyModel:
    """Qwen2VLForConditionalGeneration: `model.visual` (ViT + merger), `model.language_model`."""
    processor = _qwen_processor("Qwen2VLProcessor", options, patch=14)
    return TinyModel(qwen2_vl_model(processor.tokenizer, options), processor)


def qwen2_vl_model(tokenizer: Any, options: TinyOptions) -> Any:
    """The tiny Qwen2-VL for `tokenizer` (the demo builds its model here, 4 vision heads)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    config = Qwen2VLConfig(
        text_config=_text_config(tokenizer, options, rope_parameters=rope),
        vision_config={
            "depth": 2,
            "embed_dim": VISION_WIDTH,
            "hidden_size": HIDDEN,
            "num_heads": options.vision_heads,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        tie_word_embeddings=True,
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(options.seed)
    return _finish(Qwen2VLForConditionalGeneration(config), tokenizer)


def build_qwen2_5_vl(options: TinyOptions) -> TinyModel:
    """Qwen2_5_VLForConditionalGeneration: windowed-attention ViT (one full-attention block)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    processor = _qwen_processor("Qwen2_5_VLProcessor", options, patch=14)
    tokenizer = processor.tokenizer
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer, options, rope_parameters=rope),
        vision_config={
            "depth": 2,
            "hidden_size": VISION_WIDTH,
            "intermediate_size": 128,
            "num_heads": options.vision_heads,
            "out_hidden_size": HIDDEN,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        tie_word_embeddings=True,
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(options.seed)
    return TinyModel(_finish(Qwen2_5_VLForConditionalGeneration(config), tokenizer), processor)


def build_qwen3_vl(options: TinyOptions) -> TinyModel:
    """Qwen3VLForConditionalGeneration: patch 16, learned position grid, one deepstack layer,
    interleaved multimodal rope over a head size of 32."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    processor = _qwen_processor("Qwen3VLProcessor", options, patch=16)
    tokenizer = processor.tokenizer
    rope = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [6, 5, 5],
        "mrope_interleaved": True,
    }
    config = Qwen3VLConfig(
        text_config=_text_config(tokenizer, options, head_dim=32, rope_parameters=rope),
        vision_config={
            "depth": 2,
            "hidden_size": VISION_WIDTH,
            "intermediate_size": 128,
            "num_heads": options.vision_heads,
            "out_hidden_size": HIDDEN,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        tie_word_embeddings=True,
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(options.seed)
    return TinyModel(_finish(Qwen3VLForConditionalGeneration(config), tokenizer), processor)


def build_internvl(options: TinyOptions) -> TinyModel:
    """InternVLForConditionalGeneration (transformers-native, the `-hf` layout): InternViT
    `model.vision_tower`, pixel-shuffle MLP `model.multi_modal_projector`, a Qwen2 LM."""
    import torch
    from transformers import GotOcr2ImageProcessorPil, InternVLConfig, InternVLProcessor

    from eureka_trainer.models.processors import build_image_only

    tokenizer = build_tiny_tokenizer(
        options.vocab_texts, named_tokens=INTERNVL_TOKENS, chat_template=INTERNVL_CHAT_TEMPLATE
    )
    tile_tokens = (INTERNVL_TILE // 14) ** 2 // 4  # pixel shuffle 0.5 keeps a quarter
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": INTERNVL_TILE, "width": INTERNVL_TILE},
        crop_to_patches=True,
        min_patches=1,
        max_patches=2,
        image_mean=[0.485, 0.456, 0.406],  # ImageNet's, as InternVL's
        image_std=[0.229, 0.224, 0.225],
    )
    processor = build_image_only(
        InternVLProcessor,
        image_processor,
        tokenizer,
        chat_template=INTERNVL_CHAT_TEMPLATE,
        image_seq_length=tile_tokens,
    )
    config = InternVLConfig(
        vision_config={
            "hidden_size": VISION_WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": options.vision_heads,
            "intermediate_size": 128,
            "image_size": [INTERNVL_TILE, INTERNVL_TILE],
            "patch_size": [14, 14],
        },
        text_config={"model_type": "qwen2", **_text_config(tokenizer, options)},
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=tile_tokens,
        downsample_ratio=0.5,
        tie_word_embeddings=True,
    )
    torch.manual_seed(options.seed)
    from transformers import InternVLForConditionalGeneration

    return TinyModel(_finish(InternVLForConditionalGeneration(config), tokenizer), processor)


def build_text(options: TinyOptions) -> TinyModel:
    """Qwen2ForCausalLM: the text family (a plain causal LM; the tokenizer is its processor)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tiny_tokenizer(options.vocab_texts)
    config = Qwen2Config(**_text_config(tokenizer, options))
    torch.manual_seed(options.seed)
    return TinyModel(_finish(Qwen2ForCausalLM(config), tokenizer), tokenizer)


TINY_BUILDERS: Registry[Callable[[TinyOptions], TinyModel]] = Registry("tiny model family")
TINY_BUILDERS.add("qwen2_vl", build_qwen2_vl)
TINY_BUILDERS.add("qwen2_5_vl", build_qwen2_5_vl)
TINY_BUILDERS.add("qwen3_vl", build_qwen3_vl)
TINY_BUILDERS.add("internvl", build_internvl)
TINY_BUILDERS.add("text", build_text)


def build_tiny(family: str, options: TinyOptions = TinyOptions()) -> TinyModel:
    """A tiny model of `family` (not saved)."""
    return TINY_BUILDERS.get(family)(options)


def build_tiny_model(
    family: str,
    folder: str | Path,
    *,
    seed: int = 0,
    vocab_texts: Iterable[str] = (),
) -> TinyModel:
    """Build a tiny `family` model and save it, with its processor, in `folder`."""
    tiny = build_tiny(family, TinyOptions(seed=seed, vocab_texts=tuple(vocab_texts)))
    tiny.save(Path(folder))
    return tiny


def build_tiny_processor(
    vocab_texts: Iterable[str] | None = None,
    *,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
) -> Any:
    """The tiny Qwen2-VL processor (patch 14, merge 2: a 56x56 image is 4 image tokens), its
    tokenizer trained on the base corpus plus `vocab_texts`. The demo and the data tests use
    it without a model."""
    options = TinyOptions(
        vocab_texts=tuple(vocab_texts or ()), min_pixels=min_pixels, max_pixels=max_pixels
    )
    return _qwen_processor("Qwen2VLProcessor", options, patch=14)
