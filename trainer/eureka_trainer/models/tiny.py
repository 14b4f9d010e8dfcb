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

Layouts: `native` (transformers' own classes, every family) and `remote-code` (InternVL only:
the original InternVL2.5 chat model's interface, `eureka_trainer/models/remote_code/
internvl_chat/`, written into the folder with a `config.json` `auto_map`, loadable only with
`trust_remote_code`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eureka_trainer.models.tokenizer import (
    CHAT_TEMPLATE,
    INTERNVL_CHAT_TEMPLATE,
    INTERNVL_CHAT_TEMPLATE_STRINGS,
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
    code_files: tuple[Path, ...] = field(default=())
    """Remote-code modules the folder ships (`auto_map` names them)."""

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        for code in self.code_files:
            shutil.copyfile(code, folder / code.name)
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


REMOTE_CODE = Path(__file__).parent / "remote_code"
INTERNVL_CHAT_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "quad_start_token": "<quad>",
    "quad_end_token": "</quad>",
    "ref_start_token": "<ref>",
    "ref_end_token": "</ref>",
    "box_start_token": "<box>",
    "box_end_token": "</box>",
}
"""The special tokens InternVL2.5's tokenizer adds to InternLM2's."""


INTERNVL_CHAT_LLMS = {"internlm2": "InternLM2ForCausalLM", "qwen2": "Qwen2ForCausalLM"}
"""Language models of the remote-code InternVL2.5: InternLM2 (8B, MM-Eureka-8B's start) and
Qwen2 (the Qwen2.5 LLM of other sizes, e.g. 38B, MM-EUREKA's Zero model)."""


def internvl_chat_config(
    tokenizer: Any, options: TinyOptions, llm: str = "internlm2"
) -> dict[str, Any]:
    """`config.json` of the tiny remote-code InternVL2.5: the original's keys and `auto_map`."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "architectures": ["InternVLChatModel"],
        "auto_map": {
            "AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
            "AutoModel": "modeling_internvl_chat.InternVLChatModel",
            "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel",
        },
        "model_type": "internvl_chat",
        "template": "internvl2_5",
        "force_image_size": INTERNVL_TILE,
        "downsample_ratio": 0.5,
        "ps_version": "v2",
        "select_layer": -1,
        "dynamic_image_size": True,
        "use_thumbnail": True,
        "min_dynamic_patch": 1,
        "max_dynamic_patch": 2,
        "vision_config": {
            "architectures": ["InternVisionModel"],
            "model_type": "intern_vit_6b",
            "hidden_size": VISION_WIDTH,
            "num_attention_heads": options.vision_heads,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "image_size": INTERNVL_TILE,
            "patch_size": 14,
            "qkv_bias": True,
            "norm_type": "layer_norm",
        },
        "llm_config": {
            "architectures": [INTERNVL_CHAT_LLMS[llm]],
            "model_type": llm,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": options.max_positions,
            **TEXT_LAYERS,
            "rope_theta": 1000000.0,
            "bos_token_id": ids("<s>"),
            "eos_token_id": ids("</s>"),
            "pad_token_id": ids("</s>"),
        },
    }


def build_internvl_chat(options: TinyOptions, llm: str = "internlm2") -> TinyModel:
    """The remote-code InternVL2.5 layout (`InternVLChatModel`: `vision_model.`, `mlp1.`,
    an InternLM2 `language_model.`), loaded through `auto_map` with `trust_remote_code` as a
    hub checkpoint is. Like the original repository it ships no processor: the tokenizer
    (InternLM2's `<s>`/`</s>`, turns ended by `<|im_end|>`) and `config.json`'s tiling
    settings are all there is."""
    import torch
    from transformers import AutoConfig, AutoModel

    tokenizer = build_tiny_tokenizer(
        options.vocab_texts,
        named_tokens=INTERNVL_CHAT_TOKENS,
        chat_template=INTERNVL_CHAT_TEMPLATE_STRINGS,
    )
    tokenizer.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>"})
    code = tuple(sorted((REMOTE_CODE / "internvl_chat").glob("[cm]*.py")))
    # A fixed folder name: transformers caches remote modules by it (one copy, not one a build).
    with tempfile.TemporaryDirectory() as parent:
        stage = Path(parent) / "eureka-internvl-chat"
        stage.mkdir()
        for file in code:
            shutil.copyfile(file, stage / file.name)
        config_json = internvl_chat_config(tokenizer, options, llm)
        (stage / "config.json").write_text(json.dumps(config_json), encoding="utf-8")
        config = AutoConfig.from_pretrained(stage, trust_remote_code=True)
        torch.manual_seed(options.seed)
        model = AutoModel.from_config(config, trust_remote_code=True)  # type: ignore[no-untyped-call]
    return TinyModel(model.eval(), tokenizer, code_files=code)


TINY_BUILDERS: Registry[Callable[[TinyOptions], TinyModel]] = Registry("tiny model family")
TINY_BUILDERS.add("qwen2_vl", build_qwen2_vl)
TINY_BUILDERS.add("qwen2_5_vl", build_qwen2_5_vl)
TINY_BUILDERS.add("qwen3_vl", build_qwen3_vl)
TINY_BUILDERS.add("internvl", build_internvl)
TINY_BUILDERS.add("text", build_text)
REMOTE_CODE_BUILDERS: Registry[Callable[[TinyOptions], TinyModel]] = Registry(
    "tiny remote-code model family"
)
REMOTE_CODE_BUILDERS.add("internvl", build_internvl_chat)
LAYOUTS = {"native": TINY_BUILDERS, "remote-code": REMOTE_CODE_BUILDERS}
"""`eureka tiny-model --layout`: the builders of each checkpoint layout, by family."""


def build_tiny(
    family: str, options: TinyOptions = TinyOptions(), *, layout: str = "native"
) -> TinyModel:
    """A tiny model of `family` in `layout` (not saved)."""
    return LAYOUTS[layout].get(family)(options)


def build_tiny_model(
    family: str,
    folder: str | Path,
    *,
    seed: int = 0,
    vocab_texts: Iterable[str] = (),
    layout: str = "native",
) -> TinyModel:
    """Build a tiny `family` model in `layout` and save it, with its processor, in `folder`."""
    options = TinyOptions(seed=seed, vocab_texts=tuple(vocab_texts))
    tiny = build_tiny(family, options, layout=layout)
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
