"""A tiny tokenizer trained locally (no downloads), and the chat templates of the tiny models.

A byte-level BPE tokenizer is trained in memory on a small fixed corpus (plus any
`vocab_texts`), with Qwen's special tokens (and a family's named image tokens), the
reasoning tags as single tokens and a Qwen-style chat template. The same inputs always give
the same vocabulary; without `named_tokens` it is exactly the tokenizer the demo model was
built with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
"""Whole tokens (not special: decoding keeps them), so the answer format is short to learn."""

BASE_CORPUS = (
    "You are a helpful assistant. Answer the question about the image.",
    "How many shapes are in the image? Count them and answer with a digit.",
    "What colour is the shape? red green blue yellow circle square triangle",
    "0 1 2 3 4 5 6 7 8 9 10 + - * / = ( ) . , ? ! : ; x y z",
    "Let me think step by step. The answer is",
    "system\nuser\nassistant\n" * 4,
)


def _chat_template(image: str) -> str:
    """A Qwen-style (ChatML) template whose image items render as `image`."""
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'image' %}" + image + ""
        "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
        "{% elif item['type'] == 'text' %}{{ item['text'] }}"
        "{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


CHAT_TEMPLATE = _chat_template("<|vision_start|><|image_pad|><|vision_end|>")
"""Qwen2-VL / Qwen2.5-VL / Qwen3-VL: an image is `<|vision_start|><|image_pad|><|vision_end|>`
(the processor repeats the pad once per merged image token)."""

INTERNVL_CHAT_TEMPLATE = _chat_template("<IMG_CONTEXT>\n")
"""InternVL (transformers-native, as in the `-hf` checkpoints): an image is `<IMG_CONTEXT>`,
which the processor expands to `<img>` + `<IMG_CONTEXT>` x tokens + `</img>`."""


INTERNVL_CHAT_SYSTEM = "You are a helpful multimodal assistant."
"""The tiny remote-code InternVL's default system message (the original's `internvl2_5`
conversation template has its own, used when a prompt has no system message)."""

INTERNVL_CHAT_TEMPLATE_STRINGS = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + INTERNVL_CHAT_SYSTEM + "<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""The remote-code InternVL2.5 (`internvl2_5` conversation: ChatML, a default system message,
`<|im_end|>` ends a turn): contents are strings in which `<image>` marks an image, which the
trainer's processor expands to `<img>` + `<IMG_CONTEXT>` x tokens + `</img>`."""


def build_tiny_tokenizer(
    vocab_texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    *,
    named_tokens: Mapping[str, str] | None = None,
    chat_template: str = CHAT_TEMPLATE,
) -> Any:
    """A byte-level BPE tokenizer trained on `BASE_CORPUS` plus `vocab_texts` (deterministic).

    named_tokens: extra special tokens by attribute name (InternVL's processor reads
    `tokenizer.start_image_token` and the like); they come after Qwen's, so a tokenizer
    without them has the same ids as before."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    named = dict(named_tokens or {})
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *named.values()],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*BASE_CORPUS, *(vocab_texts or ())], trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    extra: dict[str, Any] = {"extra_special_tokens": named} if named else {}
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
        **extra,
    )
