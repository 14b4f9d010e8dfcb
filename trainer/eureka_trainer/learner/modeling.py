"""The batched forward pass shared by the learners and the `hf` rollout.

Everything here works on any `transformers` causal LM or vision-language model of the
supported families; multimodal inputs are the processor's tensors, concatenated per sample.
Loading a model lives in `eureka_trainer.models` (re-exported here for the learners).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

# Re-exported for the learners (loading lives in eureka_trainer.models).
from eureka_trainer.models.families import vision_token_ids as vision_token_ids
from eureka_trainer.models.loading import DTYPES as DTYPES
from eureka_trainer.models.loading import load_policy as load_policy


class ImageTokenMismatch(ValueError):
    """The number of image placeholder tokens does not match the image features."""


def check_image_tokens(input_ids: torch.Tensor, mm: Mapping[str, Any], config: Any) -> None:
    """Raise `ImageTokenMismatch` unless `<|image_pad|>` count == image features (Qwen2-VL)."""
    grid = mm.get("image_grid_thw")
    image_token = getattr(config, "image_token_id", None)
    if grid is None or image_token is None:
        return
    merge = int(getattr(config.vision_config, "spatial_merge_size", 2))
    features = int((torch.as_tensor(grid).prod(-1) // (merge * merge)).sum())
    tokens = int((input_ids == image_token).sum())
    if tokens != features:
        raise ImageTokenMismatch(
            f"image tokens and features do not match: {tokens} <|image_pad|> tokens in the "
            f"sequences but {features} image features from image_grid_thw {grid.tolist()}; "
            "was a vision token sampled, or a prompt truncated inside its image?"
        )


@dataclass
class PackedBatch:
    """Right-padded prompt+response rows, every tensor on the model's device. `inputs`: model
    kwargs; `starts` [B] first response position; `lengths` [B] response lengths; `width`
    T = the longest response; `first` = the first position whose logits score a response
    token (plain ints, so that using them never waits for the device)."""

    inputs: dict[str, Any]
    starts: torch.Tensor
    lengths: torch.Tensor
    width: int
    first: int = 0


TOKEN_ALIGNED = frozenset({"mm_token_type_ids"})
"""Per-token inputs: rebuilt from the packed ids (their padding differs per batch)."""


def concat_mm(mm_list: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Concatenate each sample's multimodal tensors along dim 0 (patches, images)."""
    keys = sorted({k for mm in mm_list for k in mm} - TOKEN_ALIGNED)
    return {k: torch.cat([torch.as_tensor(mm[k]) for mm in mm_list if k in mm]) for k in keys}


def pack(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    mm_list: Sequence[Mapping[str, Any]],
    pad_id: int,
    config: Any,
    device: torch.device | str = "cpu",
) -> PackedBatch:
    """Build the right-padded batch of `prompt + response` rows ([B, L]) with its mm inputs,
    on `device` (the model's: nothing moves a batch later)."""
    rows = [list(p) + list(r) for p, r in zip(prompts, responses, strict=True)]
    inputs = right_padded_inputs(rows, mm_list, pad_id, config, device)
    starts = [len(p) for p in prompts]
    lengths = [len(r) for r in responses]
    return PackedBatch(
        inputs,
        torch.tensor(starts, device=device),
        torch.tensor(lengths, device=device),
        max(lengths) if rows else 0,
        max(0, min(starts) - 1) if rows else 0,
    )


def right_padded_inputs(
    rows: Sequence[Sequence[int]],
    mm_list: Sequence[Mapping[str, Any]],
    pad_id: int,
    config: Any,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Model kwargs of token `rows` right-padded to one width ([B, L] ids and attention mask)
    with their multimodal tensors concatenated (and `mm_token_type_ids` when there are any),
    checked against the image features on the host, then moved to `device`."""
    length = max(len(r) for r in rows)
    input_ids = torch.tensor([list(r) + [pad_id] * (length - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])
    mm = concat_mm(mm_list)
    if mm:
        check_image_tokens(input_ids, mm, config)  # on the host, before the copy
    inputs: dict[str, Any] = {
        "input_ids": input_ids.to(device),
        "attention_mask": attention.to(device),
        **{k: v.to(device) for k, v in mm.items()},
    }
    if mm:
        inputs["mm_token_type_ids"] = mm_token_types(inputs["input_ids"], config)
    return inputs


def mm_token_types(input_ids: torch.Tensor, config: Any) -> torch.Tensor:
    """[B, L] 1 at image placeholder positions (transformers 5 Qwen2-VL needs it), else 0."""
    image_token = getattr(config, "image_token_id", -1)
    return (input_ids == image_token).long()


def masked_log_softmax(
    logits: torch.Tensor, suppressed: Sequence[int], temperature: float
) -> torch.Tensor:
    """log softmax of `logits / temperature` over the vocabulary with `suppressed` ids at -inf;
    `[..., V] -> [..., V]` (float32)."""
    scaled = logits.float() / max(temperature, 1e-6)
    if suppressed:
        scaled[..., list(suppressed)] = float("-inf")
    return torch.log_softmax(scaled, dim=-1)


ENTROPY_CHUNK_ELEMENTS = 1 << 24
"""Log-probs turned into entropies at a time (64 MiB of float32): bounds the temporaries."""


def token_entropy(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution from its log-probs: `[..., V] -> [...]`
    (suppressed tokens, log-prob -inf, add 0). Outside autograd, in chunks of positions.

    The entropy is a metric (`policy/entropy`), never differentiated. Computed inside the
    graph, its exp, product and mask would each be a `[B, T, V]` tensor kept until the function
    returns: with a 152k vocabulary and 8k response tokens a micro batch, 5 GB apiece on the
    GPU, next to the log-probs the loss needs.
    """
    with torch.no_grad():
        flat = logp.detach().reshape(-1, logp.shape[-1])
        out = torch.empty(flat.shape[0], dtype=flat.dtype, device=flat.device)
        rows = max(1, ENTROPY_CHUNK_ELEMENTS // max(1, flat.shape[1]))
        for start in range(0, flat.shape[0], rows):
            out[start : start + rows] = torch.special.entr(flat[start : start + rows].exp()).sum(-1)
        return out.reshape(logp.shape[:-1])


def response_logprobs(
    model: Any,
    batch: Any,
    *,
    suppressed: Sequence[int],
    temperature: float,
    entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probs and entropies of each response token: ([B, T], [B, T] or None when not
    asked for, mask [B, T]), for a `PackedBatch` (row by row) or a `shared_prompts.PromptBatch`
    (each prompt once).

    The token at position p is scored by the logits at p - 1. Logits are computed only from
    the first position that scores a response token on (`logits_to_keep`): the prompt's
    positions would cost the output layer's forward and backward for nothing.
    """
    from eureka_trainer.learner.shared_prompts import PromptBatch, prompt_shared_logits

    if isinstance(batch, PromptBatch):
        picked, targets = prompt_shared_logits(model, batch), batch.responses
    else:
        picked, targets = _row_logits(model, batch)
    steps = torch.arange(batch.width, device=targets.device)
    mask = steps[None, :] < batch.lengths[:, None]  # [B, T]
    logp = masked_log_softmax(picked, suppressed, temperature)  # [B, T, V]
    token_logp = logp.gather(-1, targets[..., None]).squeeze(-1)
    zero = torch.zeros_like(token_logp)
    entropies = torch.where(mask, token_entropy(logp), zero) if entropy else None
    return torch.where(mask, token_logp, zero), entropies, mask


def _row_logits(model: Any, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits scoring each response token [B, T, V], the response tokens [B, T]) of
    prompt + response rows."""
    ids = batch.inputs["input_ids"]
    length, first, device = ids.shape[1], batch.first, ids.device
    kept = model(
        **batch.inputs, use_cache=False, logits_to_keep=torch.arange(first, length, device=device)
    ).logits  # [B, L - first, V]
    steps = torch.arange(batch.width, device=device)
    positions = (batch.starts[:, None] + steps[None, :] - 1).clamp(max=length - 1)  # [B, T]
    picked = pick_rows(kept, positions - first)
    return picked, ids.gather(1, (positions + 1).clamp(max=length - 1))


def pick_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`values[b, index[b, t]]` for each b, t: `[B, L, V]`, `[B, T] -> [B, T, V]`.

    By `index_select` on the flattened rows: its backward keeps only the index. `gather`'s
    keeps `values` whole (the logits: a second `[B, L, V]` beside the log-softmax's, 1.2 GB for
    one 2k-token row at a 152k vocabulary), and plain indexing's backward is twice as slow on
    the CPU; `index_select` is also the fastest of the three there."""
    batch, length, width = values.shape
    offsets = torch.arange(batch, device=index.device)[:, None] * length
    flat = values.reshape(batch * length, width).index_select(0, (index + offsets).reshape(-1))
    return flat.reshape(*index.shape, width)


def to_lists(values: torch.Tensor, mask: torch.Tensor) -> list[list[float]]:
    """Rows of a [B, T] tensor cut to their mask, as python lists (one copy to the host)."""
    rows, keep = values.detach().cpu(), mask.bool().cpu()
    return [row[m].tolist() for row, m in zip(rows, keep, strict=True)]
