"""Prompts: MM-EUREKA's JSONL formats, a seeded resumable stream, and processor encoding.

- `PromptRecord` (dataclass): `id`, `messages` (HF content lists), `image_paths`, `answer`,
  `source` (`file:line`), `blank_image`, `image_fields`.
- `PromptStream(files, *, image_root=None, bad_lines="fail", family="qwen2_5_vl",
  shuffle=True, seed=0, verify_images=True)`: `next_batch(k) -> list[PromptRecord]`, `epoch`,
  `stats`, `state_dict()`, `load_state_dict(state)`.
- `encode_prompt(record, processor, *, family, max_prompt_length, min_pixels, max_pixels)
  -> EncodedPrompt` (`input_ids [L]`, `mm_inputs`, `images`, `text`, `truncated`), and
  `PromptEncoder`, which binds the settings and counts truncations; `collate_prompts(prompts,
  pad_token_id, *, padding_side="left") -> dict[str, Tensor]` batches them for a forward.
- `DataError`: `file:line: field 'x': problem`, with a `reason` for skip counters.
- `build_tiny_processor(vocab_texts=None)` (in `eureka_trainer.models.tiny`, imported on first
  use: it loads transformers): a tiny local Qwen2-VL processor for tests and the demo.
"""

from __future__ import annotations

from typing import Any

from eureka_trainer.data.encode import (
    EncodedPrompt,
    PromptEncoder,
    collate_prompts,
    encode_prompt,
    keep_positions,
    protected_token_ids,
    render_prompt,
)
from eureka_trainer.data.errors import DataError
from eureka_trainer.data.images import blank_image, load_images, verify_images
from eureka_trainer.data.records import (
    FAMILIES,
    FamilyRules,
    PromptRecord,
    family_rules,
    parse_line,
    parse_object,
)
from eureka_trainer.data.stream import PromptStream, StreamStats

__all__ = [
    "FAMILIES",
    "DataError",
    "EncodedPrompt",
    "FamilyRules",
    "PromptEncoder",
    "PromptRecord",
    "PromptStream",
    "StreamStats",
    "blank_image",
    "build_tiny_processor",
    "collate_prompts",
    "encode_prompt",
    "family_rules",
    "keep_positions",
    "load_images",
    "parse_line",
    "parse_object",
    "protected_token_ids",
    "render_prompt",
    "verify_images",
]


def __getattr__(name: str) -> Any:
    if name == "build_tiny_processor":  # imports transformers: only when asked for
        from eureka_trainer.models.tiny import build_tiny_processor

        return build_tiny_processor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
