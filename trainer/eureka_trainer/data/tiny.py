"""A tiny Qwen2-VL processor built locally (no downloads): for tests and the CPU demo.

A byte-level BPE tokenizer is trained in memory on a small fixed corpus (plus any
`vocab_texts`), with Qwen2-VL's special tokens, the reasoning tags as single tokens and a
Qwen-style chat template; the image processor is the PIL one (torchvision is not needed).
The same inputs always give the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessorPil, Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin

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

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TinyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2VLProcessor without the video processor (which needs torchvision)."""

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: Any = None,
        **_: Any,
    ) -> None:
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        # The video processor is left out on purpose: skip Qwen2VLProcessor.__init__.
        ProcessorMixin.__init__(  # type: ignore[no-untyped-call]
            self, image_processor, tokenizer, chat_template=chat_template
        )


def build_tiny_tokenizer(
    vocab_texts: Iterable[str] | None = None, vocab_size: int = 512
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `BASE_CORPUS` plus `vocab_texts` (deterministic)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*BASE_CORPUS, *(vocab_texts or ())], trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    return fast


def build_tiny_processor(
    vocab_texts: Iterable[str] | None = None,
    *,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
) -> TinyQwen2VLProcessor:
    """A Qwen2-VL processor small enough for CPU tests: patch 14, merge 2 (a 56x56 image is
    4 image tokens). `vocab_texts`: extra text the tokenizer should know well."""
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
    )
    tokenizer = build_tiny_tokenizer(vocab_texts)
    return TinyQwen2VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
