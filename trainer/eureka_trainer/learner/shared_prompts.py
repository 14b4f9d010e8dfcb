"""One forward of each prompt per micro batch: a group's responses attend to its prompt's cache.

A GRPO group is one prompt with `n` responses, and the learner's rows are `prompt + response`.
Run row by row, the model computes every prompt position `n` times (forward and backward);
with short responses that is most of the update (the demo: an 18-token prompt, 7-token
responses, n = 8 -> 3328 positions a step, 1312 without the copies). Here each distinct prompt
is run once with a KV cache, the cache rows are indexed out to its responses, and the responses
run against it:

    prompts [G, Lp] --forward (use_cache)--> logits at each prompt's last position [G, V]
                                             cache [G, heads, Lp, d] per layer
    cache[inverse] [B, heads, Lp, d] + responses [B, T-1] --forward--> logits [B, T-1, V]

The token at response position t is scored by the prompt's last logits (t = 0) or by the
response logits at t - 1. Autograd sums the gradients of a prompt's copies into its one pass,
which is exactly the gradient of the row-by-row forward; results equal it up to float rounding
(tests compare log-probs and gradients, family by family).

Positions continue after the prompt as the family's forward would number them: `linear`
families count tokens; `mrope` families (the Qwen-VL line) number a prompt with
`get_rope_index` and text goes on after its largest position on all three axes. A family
with no rule here or a micro batch without a repeated prompt takes the row-by-row path
(`modeling.pack`). Gradient checkpointing: see `prompt_shared_logits`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from eureka_trainer.learner.modeling import pick_rows, right_padded_inputs
from eureka_trainer.registry import Registry


@dataclass
class PromptBatch:
    """Distinct prompts and the responses that share them, every tensor on the model's device.

    prompts: model kwargs of the `G` distinct prompts, right-padded to `Lp` (with their mm
    inputs); prompt_lengths [G]; inverse [B]: the prompt row of each response; responses
    [B, T] right-padded response ids; lengths [B]; width T (the longest response)."""

    prompts: dict[str, Any]
    prompt_lengths: torch.Tensor
    inverse: torch.Tensor
    responses: torch.Tensor
    lengths: torch.Tensor
    width: int
    rule: str
    first: int


def distinct_prompts(
    prompts: Sequence[Sequence[int]], mm_list: Sequence[Mapping[str, Any]]
) -> tuple[list[int], list[int]]:
    """(first row of each distinct prompt, prompt index of every row). Rows are the same prompt
    when their ids are equal and they hold the same multimodal inputs object (a group's
    samples share it, also after Ray's pickling, which keeps shared objects shared): equal ids
    with different images never merge."""
    first: list[int] = []
    index: dict[tuple[tuple[int, ...], int], int] = {}
    inverse: list[int] = []
    for row, (ids, mm) in enumerate(zip(prompts, mm_list, strict=True)):
        key = (tuple(ids), id(mm) if mm else 0)
        if key not in index:
            index[key] = len(first)
            first.append(row)
        inverse.append(index[key])
    return first, inverse


def pack_prompts(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    mm_list: Sequence[Mapping[str, Any]],
    pad_id: int,
    config: Any,
    rule: str,
    device: torch.device | str = "cpu",
) -> PromptBatch | None:
    """The micro batch as a `PromptBatch`, or None when no prompt repeats (nothing to share) or
    a response is empty."""
    first, inverse = distinct_prompts(prompts, mm_list)
    if len(first) == len(prompts) or any(len(r) == 0 for r in responses):
        return None
    unique = [prompts[i] for i in first]
    inputs = right_padded_inputs(unique, [mm_list[i] for i in first], pad_id, config, device)
    width = max(len(r) for r in responses)
    rows = torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in responses])
    return PromptBatch(
        inputs,
        torch.tensor([len(p) for p in unique], device=device),
        torch.tensor(inverse, device=device),
        rows.to(device),
        torch.tensor([len(r) for r in responses], device=device),
        width,
        rule,
        min(len(p) for p in unique) - 1,
    )


@dataclass(frozen=True)
class PositionRule:
    """How a family numbers text after a prompt. starts: (model, prompt inputs, prompt lengths
    [G]) -> the first response position of each prompt [G], read after the prompts' forward
    (which numbered them as the model always does); axes: 1 for position ids [B, T], 3 for the
    multimodal rope's [3, B, T] (text: the same position on every axis)."""

    starts: Callable[[Any, dict[str, Any], torch.Tensor], torch.Tensor]
    axes: int = 1

    def continuation(self, starts: torch.Tensor, steps: int) -> torch.Tensor:
        """Position ids of `steps` response tokens after each row's `starts` [B]."""
        ids = starts[:, None] + torch.arange(steps, device=starts.device)[None, :]
        return ids[None].expand(self.axes, -1, -1) if self.axes > 1 else ids


def _count_tokens(model: Any, inputs: dict[str, Any], lengths: torch.Tensor) -> torch.Tensor:
    """Token counting: right-padded prompts are numbered 0..L-1, responses go on from L."""
    return lengths


def _after_mrope(model: Any, inputs: dict[str, Any], lengths: torch.Tensor) -> torch.Tensor:
    """Qwen-VL multimodal rope: the prompts' forward numbered them with `get_rope_index` and
    kept `rope_deltas` [G, 1] = largest position + 1 - length (what `generate` continues
    from): text after a prompt goes on at its largest position + 1 on all three axes.
    Text-only prompts are numbered 0..L-1 and leave `rope_deltas` alone (it may be stale)."""
    if inputs.get("image_grid_thw") is None:
        return lengths
    deltas: torch.Tensor = model.model.rope_deltas
    return deltas.reshape(-1).to(lengths.device) + lengths


POSITION_RULES: Registry[PositionRule] = Registry("prompt position rule")
POSITION_RULES.add("linear", PositionRule(_count_tokens))
POSITION_RULES.add("mrope", PositionRule(_after_mrope, axes=3))


def _checkpointed_layers(model: Any) -> list[Any]:
    """The modules that checkpoint their forward now (transformers' GradientCheckpointingLayer
    with checkpointing on, in training mode)."""
    if not getattr(model, "training", False):
        return []
    return [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]


_UNSET = object()


@contextmanager
def _layers_set(layers: list[Any], name: str, value: bool) -> Iterator[None]:
    """Set an attribute on each layer instance for the duration, then restore what the
    instance held (`gradient_checkpointing_enable` sets the flag on instances), or drop it."""
    saved = [layer.__dict__.get(name, _UNSET) for layer in layers]
    for layer in layers:
        setattr(layer, name, value)
    try:
        yield
    finally:
        for layer, before in zip(layers, saved, strict=True):
            if before is _UNSET:
                layer.__dict__.pop(name, None)
            else:
                setattr(layer, name, before)


def _read_only(cache: Any) -> None:
    """Make each layer's `update` return prefix + new keys/values without storing them: the
    responses' pass only reads the prompts' cache, so a checkpointed layer recomputing its
    forward in the backward pass reads the same prefix again."""
    for layer in cache.layers:
        keys, values = layer.keys, layer.values

        def update(
            key_states: torch.Tensor,
            value_states: torch.Tensor,
            *_: Any,
            _keys: torch.Tensor = keys,
            _values: torch.Tensor = values,
            **__: Any,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.cat([_keys, key_states], dim=-2), torch.cat([_values, value_states], -2)

        layer.update = update


def prompt_shared_logits(model: Any, batch: PromptBatch) -> torch.Tensor:
    """Logits scoring every response token, [B, T, V]: position t is scored by the logits after
    response token t - 1 (t = 0: after the prompt's last token).

    Under gradient checkpointing (transformers drops the cache inside checkpointed layers) the
    prompts' pass runs unchecked, keeping its activations (one copy per distinct prompt), and
    the responses' pass is checkpointed with the layers allowed to read the cache, made
    read-only so that the backward's recomputation sees the same prefix."""
    prompts, rule = batch.prompts, POSITION_RULES.get(batch.rule)
    width_p = prompts["input_ids"].shape[1]
    first = batch.first
    checkpointed = _checkpointed_layers(model)
    with _layers_set(checkpointed, "gradient_checkpointing", False):
        out = model(
            **prompts,
            use_cache=True,
            logits_to_keep=torch.arange(first, width_p, device=batch.responses.device),
        )
    kept: torch.Tensor = out.logits  # [G, Lp - first, V]
    # `pick_rows` keeps only its index for the backward (`gather` kept the logits whole).
    last = pick_rows(kept, (batch.prompt_lengths - 1 - first)[:, None])  # [G, 1, V]
    after_prompt = last[batch.inverse]  # [B, 1, V]
    if batch.width == 1:
        return after_prompt
    starts = rule.starts(model, prompts, batch.prompt_lengths)
    cache = out.past_key_values
    cache.batch_select_indices(batch.inverse)  # each response row gets its prompt's keys/values
    _read_only(cache)
    steps = batch.width - 1  # the last response token scores nothing
    response_mask = (
        torch.arange(steps, device=batch.lengths.device)[None, :] < batch.lengths[:, None]
    ).long()
    mask = torch.cat([prompts["attention_mask"][batch.inverse], response_mask], dim=1)
    with _layers_set(checkpointed, "_can_checkpoint_with_cache", True):
        later = model(
            input_ids=batch.responses[:, :steps],
            attention_mask=mask,
            position_ids=rule.continuation(starts[batch.inverse], steps),
            past_key_values=cache,
            use_cache=True,
        ).logits  # [B, T - 1, V]
    return torch.cat([after_prompt, later], dim=1)
