"""The tiny Qwen2-VL processor and tokenizer for data tests: now in `eureka_trainer.models`.

Kept as a re-export so that existing imports (`from eureka_trainer.data.tiny import
build_tiny_processor`) keep working; new code imports from `eureka_trainer.models`.
"""

from __future__ import annotations

from eureka_trainer.models.tiny import build_tiny_processor
from eureka_trainer.models.tokenizer import (
    BASE_CORPUS,
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    TAG_TOKENS,
    build_tiny_tokenizer,
)

__all__ = [
    "BASE_CORPUS",
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TAG_TOKENS",
    "build_tiny_processor",
    "build_tiny_tokenizer",
]
