"""The supported model families: how each is loaded and what its forward takes.

One registry entry per `model.family` (a registry, not if/elif chains on the name). What a
family needs from the *data* (blank image, image-span tokens, pixel bounds) is in
`eureka_trainer.data.records.FAMILIES`; this is what it needs from transformers. Facts are
read from transformers 5.23's modeling code (`models/<family>/modeling_*.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eureka_trainer.registry import Registry


@dataclass(frozen=True)
class ModelFamily:
    """How a family's checkpoints load and run.

    auto_class: the transformers auto class that loads a checkpoint. processor_class: the
    transformers processor (None: the tokenizer is the processor). model_types: the
    `config.json` `model_type`s of the family. token_types: the forward takes
    `mm_token_type_ids` ([B, L], 1 on image tokens): Qwen2-VL, Qwen2.5-VL and Qwen3-VL compute
    their multimodal rope positions from it (`get_rope_index`); InternVL's forward has no
    such argument and `generate` rejects unknown inputs. vision_prefixes: checkpoint-name
    prefixes of the vision tower (and projector), what `model.frozenPrefixes` names to keep it
    frozen (module names add a leading `model.`). image_wrap: tokens the processor writes
    around each image's run of placeholder tokens *as part of the expansion* (InternVL's
    `<img>` ... `</img>`; Qwen's `<|vision_start|>` comes from the chat template instead): a
    prompt handed back to vLLM, which expands each image itself, loses them too.
    prompt_positions: how the forward numbers text after a prompt, for the learner's
    one-pass-per-prompt forward (`learner.shared_prompts.POSITION_RULES`: `mrope` for the
    Qwen-VL line's multimodal rope, `linear` for token counting); None: that forward is not
    used (rows are run whole).

    Remote-code layouts (`LAYOUTS`, e.g. the original InternVL2.5 chat model) also set:
    layout: the layout's name (`native` for transformers' own classes). remote_code: the
    checkpoint's classes come with it (loading needs `model.trustRemoteCode`).
    context_token: the image placeholder token the model replaces by image features (the
    model reads its id from an attribute the caller sets). stop_token: the token that ends
    an assistant turn when it is not the tokenizer's EOS. vllm_placeholder: the text vLLM's
    implementation of the layout expands into an image's tokens.
    """

    name: str
    auto_class: str
    processor_class: str | None
    model_types: tuple[str, ...]
    token_types: bool = False
    vision_prefixes: tuple[str, ...] = ()
    image_wrap: tuple[str, str] | None = None
    prompt_positions: str | None = None
    layout: str = "native"
    remote_code: bool = False
    context_token: str | None = None
    stop_token: str | None = None
    vllm_placeholder: str | None = None


MODEL_FAMILIES: Registry[ModelFamily] = Registry("model family")
for _family in (
    # Qwen2VLModel: self.visual (vision tower + merger), self.language_model
    ModelFamily(
        "qwen2_vl",
        "AutoModelForImageTextToText",
        "Qwen2VLProcessor",
        ("qwen2_vl",),
        token_types=True,
        vision_prefixes=("visual.",),
        prompt_positions="mrope",
    ),
    ModelFamily(
        "qwen2_5_vl",
        "AutoModelForImageTextToText",
        "Qwen2_5_VLProcessor",
        ("qwen2_5_vl",),
        token_types=True,
        vision_prefixes=("visual.",),
        prompt_positions="mrope",
    ),
    # Qwen3VLModel: self.visual (with its merger and the deepstack mergers), language_model
    ModelFamily(
        "qwen3_vl",
        "AutoModelForImageTextToText",
        "Qwen3VLProcessor",
        ("qwen3_vl",),
        token_types=True,
        vision_prefixes=("visual.",),
        prompt_positions="mrope",
    ),
    # InternVLModel: self.vision_tower, self.multi_modal_projector, self.language_model.
    # The remote-code layout (`internvl_chat`) is in LAYOUTS.
    ModelFamily(
        "internvl",
        "AutoModelForImageTextToText",
        "InternVLProcessor",
        ("internvl",),
        vision_prefixes=("vision_tower.", "multi_modal_projector."),
        image_wrap=("<img>", "</img>"),
        prompt_positions="linear",
    ),
    ModelFamily("text", "AutoModelForCausalLM", None, (), prompt_positions="linear"),
):
    MODEL_FAMILIES.add(_family.name, _family)


LAYOUTS: Registry[ModelFamily] = Registry("remote-code checkpoint layout")
"""Checkpoint layouts of a family whose classes come with the checkpoint, by `model_type`."""
LAYOUTS.add(
    "internvl_chat",
    # OpenGVLab/InternVL2_5-* (github.com/OpenGVLab/InternVL, internvl_chat/internvl/model/
    # internvl_chat/modeling_internvl_chat.py): `auto_map` names InternVLChatModel for AutoModel
    # and AutoModelForCausalLM (not ImageTextToText); modules vision_model, mlp1 (projector),
    # language_model (InternLM2); its forward takes image_flags and reads the <IMG_CONTEXT> id
    # from `model.img_context_token_id`; `chat()` stops at the template's `<|im_end|>`; vLLM's
    # InternVLChatModel expands the text `<image>` (vllm/model_executor/models/internvl.py).
    ModelFamily(
        "internvl",
        "AutoModel",
        None,
        ("internvl_chat",),
        vision_prefixes=("vision_model.", "mlp1."),
        image_wrap=("<img>", "</img>"),
        layout="internvl_chat",
        remote_code=True,
        context_token="<IMG_CONTEXT>",
        stop_token="<|im_end|>",
        vllm_placeholder="<image>",
    ),
)


def model_family(name: str) -> ModelFamily:
    """The registered family `name` (a `KeyError` naming the known ones otherwise)."""
    return MODEL_FAMILIES.get(name)


def layout_of(family: str, model_type: str | None) -> ModelFamily:
    """How a checkpoint of `family` whose `config.json` says `model_type` is driven: its
    remote-code layout when one of `family` is registered for that type, else the family."""
    if model_type is not None and model_type in LAYOUTS:
        layout = LAYOUTS.get(model_type)
        if layout.name == family:
            return layout
    return model_family(family)


def family_of_model_type(model_type: str) -> str:
    """The family of a `config.json` `model_type` (anything unknown is a text model)."""
    if model_type in LAYOUTS:
        return LAYOUTS.get(model_type).name
    for name in MODEL_FAMILIES:
        if model_type in MODEL_FAMILIES.get(name).model_types:
            return name
    return "text"


VISION_TOKEN_ATTRS = (
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
)
"""Config attributes naming vision special tokens (Qwen's four; InternVL's `image_token_id`
is its `<IMG_CONTEXT>`)."""


def vision_token_ids(config: Any) -> list[int]:
    """Ids of the vision special tokens of a model config (never sampled, never trained)."""
    ids = [getattr(config, attr, None) for attr in VISION_TOKEN_ATTRS]
    return sorted({int(i) for i in ids if isinstance(i, int) and i >= 0})
