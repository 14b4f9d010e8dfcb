"""Compute once what a GRPO group repeats: its prompt's image and its prompt's rope positions.

The `n` samples of a group share one prompt and one image, and both the `hf` rollout (every
prompt repeated `n` times in one batch) and the learner (`n` rows per prompt) hand the model
every copy. For the Qwen2-VL family two methods of the model *instance* are wrapped:

- the vision tower's `forward`: identical images are encoded once and their features indexed
  back to every copy. Autograd sums the copies' gradients into the one computation, which is
  exactly the gradient of encoding each copy separately.
- `get_rope_index` (the multimodal rope positions, a Python loop over rows): identical rows
  (the rollout's prompt copies) are computed once.

Results equal the unwrapped model's up to float rounding (tests compare logits and
gradients). Anything the wrappers do not recognise goes to the original method unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from eureka_trainer.registry import Registry

PRECOMPUTED_VISION_KWARGS = frozenset({"position_ids", "cu_seqlens", "max_seqlen"})
"""Keyword arguments with which a caller hands the vision tower precomputed values for every
image (the wrapper then cannot drop copies, so it steps aside)."""


@dataclass(frozen=True)
class Duplicates:
    """`unique` [U]: indices of the first copy of each distinct item, in order;
    `inverse` [N]: for each item, the position of its copy in `unique`."""

    unique: list[int]
    inverse: torch.Tensor

    @property
    def has_copies(self) -> bool:
        return len(self.unique) < len(self.inverse)


def find_duplicates(items: Sequence[torch.Tensor]) -> Duplicates:
    """Group exactly equal tensors (same shape and values); [N] items -> `Duplicates`.

    A cheap fingerprint (shape, sum, first and last value) picks candidates and `torch.equal`
    decides, so two different items are never merged."""
    unique: list[int] = []
    inverse: list[int] = []
    by_print: dict[tuple[Any, ...], list[int]] = {}
    for index, item in enumerate(items):
        flat = item.reshape(-1)
        key = (
            tuple(item.shape),
            float(flat.sum()) if flat.numel() else 0.0,
            float(flat[0]) if flat.numel() else 0.0,
            float(flat[-1]) if flat.numel() else 0.0,
        )
        candidates = by_print.setdefault(key, [])
        match = next((u for u in candidates if torch.equal(items[unique[u]], item)), None)
        if match is None:
            match = len(unique)
            unique.append(index)
            candidates.append(match)
        inverse.append(match)
    return Duplicates(unique, torch.tensor(inverse, dtype=torch.long))


def block_rows(sizes: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """Row indices of blocks `picks` [M] of a tensor cut in contiguous blocks of `sizes` [B]
    rows, concatenated: [sum(sizes[picks])], on the device of `sizes`."""
    picks = picks.to(sizes.device)
    starts = torch.cumsum(sizes, 0) - sizes
    lengths = sizes[picks]
    offsets = torch.arange(int(lengths.sum()), device=sizes.device) - torch.repeat_interleave(
        torch.cumsum(lengths, 0) - lengths, lengths
    )
    return torch.repeat_interleave(starts[picks], lengths) + offsets


def shared_vision_forward(original: Callable[..., Any], merge: int) -> Callable[..., Any]:
    """Wrap a Qwen2-VL-style vision tower `forward(hidden_states [P, D], grid_thw [I, 3])`."""

    def forward(hidden_states: torch.Tensor, grid_thw: torch.Tensor, **kwargs: Any) -> Any:
        if grid_thw.shape[0] < 2 or PRECOMPUTED_VISION_KWARGS & kwargs.keys():
            return original(hidden_states, grid_thw, **kwargs)
        patches = grid_thw.prod(-1)  # [I] patch rows of each image
        images = torch.split(hidden_states, patches.tolist())
        copies = find_duplicates(
            [
                torch.cat([g, img.reshape(-1)])
                for g, img in zip(grid_thw.to(hidden_states.dtype), images, strict=True)
            ]
        )
        if not copies.has_copies:
            return original(hidden_states, grid_thw, **kwargs)
        picks = torch.tensor(copies.unique, device=grid_thw.device)
        out = original(hidden_states[block_rows(patches, picks)], grid_thw[picks], **kwargs)
        # Back to one block per image: the u-th unique block for every copy of it.
        unique_patches = patches[picks]
        out.pooler_output = out.pooler_output[
            block_rows(unique_patches // (merge * merge), copies.inverse)
        ]
        if getattr(out, "last_hidden_state", None) is not None:
            out.last_hidden_state = out.last_hidden_state[
                block_rows(unique_patches, copies.inverse)
            ]
        return out

    return forward


ROW_ALIGNED = ("mm_token_type_ids", "attention_mask", "image_grid_thw")
"""`get_rope_index` arguments with one entry per row (the grid too, at one image per row)."""


def shared_rope_index(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `get_rope_index(input_ids [B, L], ...) -> (position_ids [3, B, L], deltas [B, 1])`
    so that identical rows (same ids, mask and image grid) are computed once. Only the common
    case is taken (keyword arguments, one image per row, no video); the rest goes through."""

    def get_rope_index(input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        rows = input_ids.shape[0]
        given = [kwargs.get(k) for k in ROW_ALIGNED]
        aligned = [v for v in given if isinstance(v, torch.Tensor) and v.shape[0] == rows]
        if (
            args
            or kwargs.get("video_grid_thw") is not None
            or len(aligned) < len(ROW_ALIGNED)
            or not bool((aligned[0] > 0).any(-1).all())  # every row has an image
        ):
            return original(input_ids, *args, **kwargs)
        keys = [
            torch.cat([input_ids[i], *(v[i].to(input_ids.dtype) for v in aligned)])
            for i in range(rows)
        ]
        copies = find_duplicates(keys)
        if not copies.has_copies:
            return original(input_ids, *args, **kwargs)
        picks = torch.tensor(copies.unique, device=input_ids.device)
        inverse = copies.inverse.to(input_ids.device)
        sub = {**kwargs, **{k: v[picks] for k, v in zip(ROW_ALIGNED, aligned, strict=True)}}
        positions, deltas = original(input_ids[picks], **sub)
        return positions[:, inverse], deltas[inverse]

    return get_rope_index


def share_qwen2_vl(model: Any) -> None:
    """Install both wrappers on a Qwen2-VL / Qwen2.5-VL model instance."""
    inner = model.model
    visual = inner.visual
    visual.forward = shared_vision_forward(visual.forward, int(visual.spatial_merge_size))
    inner.get_rope_index = shared_rope_index(inner.get_rope_index)


SHARING: Registry[Callable[[Any], None]] = Registry("input sharing")
SHARING.add("qwen2_vl", share_qwen2_vl)
SHARING.add("qwen2_5_vl", share_qwen2_vl)


def share_repeated_inputs(model: Any, family: str) -> bool:
    """Install the wrappers of `family` on `model`; False when the family has none."""
    if family not in SHARING:
        return False
    SHARING.get(family)(model)
    return True
