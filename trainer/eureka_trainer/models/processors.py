"""Image-only processors: a family's transformers processor without its video processor.

transformers' Qwen2-VL, Qwen2.5-VL, Qwen3-VL and InternVL processors take a video processor,
and every video processor needs torchvision. The trainer never feeds videos, so where
torchvision is missing (CPU machines, CI) the processor is built from the saved tokenizer
and image processor (the PIL one) alone. Everything else (the image token expansion, chat
template, `mm_token_type_ids`) is the family's own processor code.

How it works: `ProcessorMixin` takes its sub-processors from the names in `__init__`'s
signature (`ProcessorMixin.get_attributes`); the subclass made here declares only
`image_processor` and `tokenizer`, so the parent's `__init__` binds those two and drops the
video slot.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def image_only(processor_class: type) -> type:
    """`processor_class` (a transformers processor) with no video processor."""

    parent: Any = processor_class

    def __init__(
        self: Any, image_processor: Any = None, tokenizer: Any = None, **kwargs: Any
    ) -> None:
        parent.__init__(
            self,
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            **kwargs,
        )

    # The parent's signature less the video slot: what `get_attributes` and `to_dict` (the
    # saved processor_config.json, e.g. InternVL's image_seq_length) read.
    signature = inspect.signature(parent.__init__)
    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != "video_processor"]
    )
    return type(processor_class.__name__, (processor_class,), {"__init__": __init__})


def build_image_only(
    processor_class: type, image_processor: Any, tokenizer: Any, **kwargs: Any
) -> Any:
    """An image-only processor of `processor_class`; kwargs: its own (`chat_template`,
    InternVL's `image_seq_length`)."""
    return image_only(processor_class)(
        image_processor=image_processor, tokenizer=tokenizer, **kwargs
    )
