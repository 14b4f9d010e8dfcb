"""What the learner computes for the same tokens: the reference the engine is checked against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eureka_trainer.backends import Completion


def learner_logprobs(
    model: Any,
    prompt_ids: Sequence[int],
    completions: Sequence[Completion],
    *,
    temperature: float,
    suppressed: Sequence[int] = (),
    mm: Mapping[str, Any] | None = None,
    pad_id: int = 0,
) -> list[list[float]]:
    """Per-token log-probs [T] of each completion under `model`, by the learner's own forward
    (`pack` + `response_logprobs`, vision ids masked, divided by the temperature)."""
    import torch

    from eureka_trainer.learner.modeling import pack, response_logprobs, to_lists

    batch = pack(
        [list(prompt_ids)] * len(completions),
        [c.token_ids for c in completions],
        [dict(mm or {})] * len(completions),
        pad_id,
        model.config,
    )
    with torch.no_grad():
        logp, _, mask = response_logprobs(
            model, batch, suppressed=suppressed, temperature=temperature or 1.0
        )
    return to_lists(logp, mask)


def max_abs_diff(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """Largest |a - b| over ragged rows of equal shapes."""
    assert [len(r) for r in a] == [len(r) for r in b]
    return max(
        (abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)),
        default=0.0,
    )


def boosted_state(model: Any, embed: str, token_ids: Sequence[int], delta: float) -> dict[str, Any]:
    """The model's weights edited so that `token_ids` become likely next tokens everywhere.

    With tied embeddings a logit is `h . E[v]`: every row gets a large constant in dimension 0
    (so the final hidden state has a large positive component there) and the rows of
    `token_ids` a bit more (`delta`), which adds about `delta * h_0` to their logits."""
    original = model.state_dict()
    table = original[embed].clone()
    table[:, 0] = 10.0
    table[list(token_ids), 0] += delta
    tied = original[embed].data_ptr()
    return {
        name: table if tensor.data_ptr() == tied else tensor.clone()  # tied names stay tied
        for name, tensor in original.items()
    }


def with_weights(model: Any, state: Mapping[str, Any]) -> Any:
    """A copy of `model` holding `state` (the session's model stays as built)."""
    import copy

    clone = copy.deepcopy(model)
    clone.load_state_dict(dict(state))
    return clone.eval()
