"""Prompt encoding through the model's own processor: chat template, images, truncation.

Truncation policy (documented choice): a prompt longer than `max_prompt_length` tokens loses
text tokens from the left (the oldest context: system prompt first), never a token of an
image's span (`<|vision_start|>`, the image pads, `<|vision_end|>` for Qwen2-VL), so image
features and image tokens always match. The end of the prompt (the question and the
assistant header the model generates after) is kept. When the image spans alone are longer
than the limit, the prompt is refused with a `DataError` (reason `too_long`) naming its
`file:line`: cutting an image would crash the model's forward.

torch, PIL and transformers are imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eureka_trainer.data.errors import DataError
from eureka_trainer.data.images import load_images
from eureka_trainer.data.records import PromptRecord, family_rules

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from eureka_trainer.config.spec import DataSpec


@dataclass
class EncodedPrompt:
    """One prompt, ready for a rollout engine and the learner.

    input_ids: `[L]` token ids, `L <= max_prompt_length`. mm_inputs: what the model's forward
    needs besides the ids, for this one prompt: for the Qwen2-VL family `pixel_values`
    `[patches, C*t*p*p]`, `image_grid_thw` `[images, 3]` and `mm_token_type_ids` `[L]` (1 on
    image tokens); token-aligned entries are 1-D `[L]` and truncated with the ids. images: the
    decoded RGB images (what a vLLM engine takes). text: the chat-templated prompt before
    tokenization. truncated: text tokens were cut; num_truncated: how many.
    """

    input_ids: list[int]
    mm_inputs: dict[str, torch.Tensor]
    images: list[Image.Image]
    text: str
    truncated: bool = False
    num_truncated: int = 0
    record_id: str = ""
    source: str = ""


def render_prompt(record: PromptRecord, processor: Any) -> str:
    """The chat-templated prompt text, with the assistant header to generate after.

    Raises `DataError` naming `file:line` when the record's own text holds the processor's
    image mark (`<|image_pad|>` for Qwen-VL, `<image>` for InternVL's chat checkpoints): the
    processor would read it as one more image's place and refuse the prompt, or misplace the
    images."""
    text = str(
        processor.apply_chat_template(record.messages, add_generation_prompt=True, tokenize=False)
    )
    mark = getattr(processor, "image_token", None)
    if isinstance(mark, str) and mark and text.count(mark) != record.num_images:
        raise DataError(
            record.source,
            None,
            f"the text contains {mark!r}, which this model's processor reads as an image's place "
            f"({text.count(mark)} in the prompt for {record.num_images} image(s)); remove it "
            "(images are given as image items or '<image>' placeholders)",
            reason="bad_field",
        )
    return text


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


def protected_token_ids(processor: Any, family: str) -> set[int]:
    """Ids of the family's image-span tokens that exist in the processor's vocabulary."""
    tokenizer = _tokenizer(processor)
    vocab = tokenizer.get_vocab()
    ids = {vocab[t] for t in family_rules(family).vision_tokens if t in vocab}
    image_token_id = getattr(processor, "image_token_id", None)
    if isinstance(image_token_id, int):
        ids.add(image_token_id)
    return ids


def keep_positions(ids: list[int], protected: set[int], limit: int) -> list[int] | None:
    """Positions kept when cutting unprotected tokens from the left to fit `limit`.

    Returns None when the protected tokens alone exceed `limit`.
    """
    excess = len(ids) - limit
    if excess <= 0:
        return list(range(len(ids)))
    if sum(1 for i in ids if i in protected) > limit:
        return None
    keep: list[int] = []
    for position, token in enumerate(ids):
        if excess and token not in protected:
            excess -= 1
            continue
        keep.append(position)
    return keep


def encode_prompt(
    record: PromptRecord,
    processor: Any,
    *,
    family: str,
    max_prompt_length: int,
    min_pixels: int = 4 * 28 * 28,
    max_pixels: int = 640 * 28 * 28,
) -> EncodedPrompt:
    """Chat template + processor on one record; truncation as the module docstring says.

    processor: the model's HF processor (a tokenizer for the `text` family). Raises
    `DataError` naming `file:line` for an image that fails to decode (`bad_image`) or a
    prompt whose image tokens alone exceed `max_prompt_length` (`too_long`).
    """
    images = load_images(record)
    text = render_prompt(record, processor)
    return encode_loaded(
        record, images, text, processor, family, max_prompt_length, min_pixels, max_pixels
    )


def encode_loaded(
    record: PromptRecord,
    images: list[Any],
    text: str,
    processor: Any,
    family: str,
    max_prompt_length: int,
    min_pixels: int,
    max_pixels: int,
) -> EncodedPrompt:
    """`encode_prompt` on a record whose images and templated text are already loaded: one
    processor call, then `finish_encoding`."""
    kwargs = processor_kwargs(family_rules(family), images, min_pixels, max_pixels)
    out = processor(text=[text], **kwargs)
    return finish_encoding(record, images, text, out, processor, family, max_prompt_length)


def processor_kwargs(
    rules: Any, images: list[Any], min_pixels: int, max_pixels: int
) -> dict[str, Any]:
    """Keyword arguments of the processor call for a prompt with `images`."""
    # The template already wrote every special token; a tokenizer adding its BOS again would
    # double it.
    kwargs: dict[str, Any] = {"return_tensors": "pt", "add_special_tokens": False}
    if images:
        kwargs.update(images=images, **rules.image_kwargs(min_pixels, max_pixels))
    return kwargs


def finish_encoding(
    record: PromptRecord,
    images: list[Any],
    text: str,
    out: Any,
    processor: Any,
    family: str,
    max_prompt_length: int,
) -> EncodedPrompt:
    """The `EncodedPrompt` of one record from its processor output `out` (one row: ids
    `[1, L]`), truncated as the module docstring says."""
    import torch

    ids: list[int] = out["input_ids"][0].tolist()
    # The vocabulary lookup only matters when something must be cut (it is 10% of encoding).
    protected = protected_token_ids(processor, family) if len(ids) > max_prompt_length else set()
    keep = keep_positions(ids, protected, max_prompt_length)
    if keep is None:
        raise DataError(
            record.source,
            None,
            f"the image tokens alone exceed maxPromptLength ({max_prompt_length}); lower "
            "maxPixels or raise maxPromptLength",
            reason="too_long",
        )
    index = torch.tensor(keep, dtype=torch.long)
    mm_inputs: dict[str, torch.Tensor] = {}
    for key, value in out.items():
        if key in ("input_ids", "attention_mask") or not isinstance(value, torch.Tensor):
            continue
        token_aligned = value.dim() == 2 and value.shape == (1, len(ids))
        mm_inputs[key] = value[0, index] if token_aligned else value
    return EncodedPrompt(
        input_ids=[ids[i] for i in keep],
        mm_inputs=mm_inputs,
        images=images,
        text=text,
        truncated=len(keep) < len(ids),
        num_truncated=len(ids) - len(keep),
        record_id=record.id,
        source=record.source,
    )


@dataclass
class PromptEncoder:
    """`encode_prompt` with the job's settings bound, counting truncations and refusals.

    `stats` holds `truncated` (prompts cut), `truncated_tokens` and `refused` (by reason).
    """

    processor: Any
    family: str
    max_prompt_length: int
    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 640 * 28 * 28
    truncated: int = 0
    truncated_tokens: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, processor: Any, data: DataSpec, *, family: str) -> PromptEncoder:
        """An encoder with an RLJob's `spec.data` limits and the model's family."""
        return cls(
            processor,
            family=family,
            max_prompt_length=data.max_prompt_length,
            min_pixels=data.min_pixels,
            max_pixels=data.max_pixels,
        )

    def encode(self, record: PromptRecord) -> EncodedPrompt:
        """Encode one record; a `DataError` is counted under `refused` and raised."""
        try:
            encoded = encode_prompt(
                record,
                self.processor,
                family=self.family,
                max_prompt_length=self.max_prompt_length,
                min_pixels=self.min_pixels,
                max_pixels=self.max_pixels,
            )
        except DataError as error:
            self.refused[error.reason] = self.refused.get(error.reason, 0) + 1
            raise
        self.truncated += int(encoded.truncated)
        self.truncated_tokens += encoded.num_truncated
        return encoded

    def metrics(self) -> dict[str, float]:
        """`data/truncated`, `data/truncated_tokens`, `data/refused/<reason>`."""
        metrics = {
            "data/truncated": float(self.truncated),
            "data/truncated_tokens": float(self.truncated_tokens),
        }
        metrics.update({f"data/refused/{k}": float(v) for k, v in sorted(self.refused.items())})
        return metrics


TOKEN_ALIGNED_PAD = 0
"""Padding value of token-aligned inputs (`mm_token_type_ids`: 0 is "text")."""


def collate_prompts(
    prompts: list[EncodedPrompt], pad_token_id: int, *, padding_side: str = "left"
) -> dict[str, torch.Tensor]:
    """Batch encoded prompts for one forward or `generate` call.

    Returns `input_ids` `[B, L]` and `attention_mask` `[B, L]` padded to the longest prompt
    (left padding by default, as generation wants), token-aligned inputs (`mm_token_type_ids`)
    `[B, L]` padded with 0, and every other input concatenated along dim 0 in prompt order
    (`pixel_values` `[sum patches, D]`, `image_grid_thw` `[sum images, 3]`: the Qwen2-VL
    convention). An input only some prompts have is concatenated over those that have it.
    """
    import torch

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    width = max(len(p.input_ids) for p in prompts)

    def pad(row: torch.Tensor, value: int) -> torch.Tensor:
        fill = row.new_full((width - row.shape[0],), value)
        return torch.cat([fill, row] if padding_side == "left" else [row, fill])

    ids = [torch.tensor(p.input_ids, dtype=torch.long) for p in prompts]
    batch = {
        "input_ids": torch.stack([pad(row, pad_token_id) for row in ids]),
        "attention_mask": torch.stack([pad(torch.ones_like(row), 0) for row in ids]),
    }
    keys = dict.fromkeys(key for p in prompts for key in p.mm_inputs)
    for key in keys:
        values = [(p, p.mm_inputs[key]) for p in prompts if key in p.mm_inputs]
        if all(v.dim() == 1 and v.shape[0] == len(p.input_ids) for p, v in values):
            if len(values) != len(prompts):
                raise ValueError(f"token-aligned input {key!r} is missing from some prompts")
            batch[key] = torch.stack([pad(v, TOKEN_ALIGNED_PAD) for _, v in values])
        else:
            batch[key] = torch.cat([v for _, v in values], dim=0)
    return batch
