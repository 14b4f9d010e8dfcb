"""What flows between the phases of a step: prompt groups and their pure transformations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.config.status import Sample
from eureka_trainer.registry import Registry
from eureka_trainer.reporting.thumbnails import thumbnail_uri
from eureka_trainer.rewards.reflection import reflection_rate


def _vllm_exact(sampling: SamplingConfig) -> bool:
    from eureka_trainer.rollout.vllm_engine import exact_logprobs  # imports without vLLM

    return exact_logprobs(sampling)


EXACT_LOGPROBS: Registry[Callable[[SamplingConfig], bool]] = Registry("rollout backend")
"""Per rollout backend: are the log-probs it reports those of the policy for this sampling?
`hf` computes them from the unprocessed logits (transformers' `output_logits`), so top-p does
not change them; vLLM's `processed_logprobs` are renormalised over the top-p nucleus."""
EXACT_LOGPROBS.add("hf", lambda sampling: True)
EXACT_LOGPROBS.add("vllm", _vllm_exact)


def recompute_old_logprobs(backend: str, sampling: SamplingConfig, update_epochs: int) -> bool:
    """Whether the learner must recompute the old log-probs instead of taking the engine's:
    with several update epochs (the policy moves between them), or whenever the engine's are
    not the policy's (vLLM with `topP < 1`): a ratio against them would be biased."""
    return update_epochs > 1 or not EXACT_LOGPROBS.get(backend)(sampling)


@dataclass
class Group:
    """One prompt and its `n` scored responses (the unit the online filter keeps or drops)."""

    prompt_id: str
    prompt_text: str
    answer: str
    request: GenerationRequest
    completions: list[Completion]
    total: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)
    valid: bool = True

    @property
    def accuracy(self) -> list[float]:
        """Per-sample accuracy in [0, 1] (0 when the job has no accuracy reward)."""
        return self.components.get("accuracy", [0.0] * len(self.completions))


def attach_scores(
    groups: Sequence[Group],
    total: Sequence[float],
    components: Mapping[str, Sequence[float]],
    valid: Sequence[bool],
) -> None:
    """Split flat per-sample scores (prompt-major) back onto their groups."""
    offset = 0
    for group in groups:
        size = len(group.completions)
        group.total = list(total[offset : offset + size])
        group.components = {k: list(v[offset : offset + size]) for k, v in components.items()}
        group.valid = all(valid[offset : offset + size])
        offset += size


def response_mask(groups: Sequence[Group]) -> Any:
    """[P*n, T] float mask of response tokens (prompt-major rows)."""
    import torch

    flat = [c for g in groups for c in g.completions]
    width = max((len(c.token_ids) for c in flat), default=1) or 1
    mask = torch.zeros((len(flat), width))
    for row, completion in enumerate(flat):
        mask[row, : len(completion.token_ids)] = 1
    return mask


def train_samples(
    groups: Sequence[Group], advantages: Any, old_logprobs: Sequence[Sequence[float]] | None = None
) -> list[TrainSample]:
    """One `TrainSample` per response; `advantages` [P*n, T]; old log-probs default to the
    rollout's."""
    samples = []
    row = 0
    per_row = advantages.tolist()  # one conversion, not one per row (a step has hundreds)
    for group in groups:
        for completion in group.completions:
            length = len(completion.token_ids)
            old = old_logprobs[row] if old_logprobs is not None else completion.logprobs
            samples.append(
                TrainSample(
                    prompt_ids=group.request.prompt_ids,
                    response_ids=completion.token_ids,
                    advantages=per_row[row][:length],
                    old_logprobs=list(old),
                    mm_inputs=group.request.mm_inputs,
                )
            )
            row += 1
    return samples


def sample_records(
    groups: Sequence[Group], step: int, limit: int, max_chars: int = 2000
) -> list[Sample]:
    """Up to `limit` `Sample`s for the status: the first response of the first groups."""
    out: list[Sample] = []
    for group in groups:
        if len(out) >= limit:
            break
        rewards = {name: values[0] for name, values in group.components.items()}
        rewards["total"] = group.total[0]
        out.append(
            Sample(
                step=step,
                prompt=group.prompt_text[:max_chars],
                response=group.completions[0].text[:max_chars],
                answer=group.answer,
                rewards=rewards,
                image=thumbnail_uri(group.request.images[0]) if group.request.images else None,
            )
        )
    return out


def response_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """`response_length/*`, the share of responses cut at the length limit, and the share of
    reflective ones (`reflection/rate`)."""
    lengths = [len(c.token_ids) for g in groups for c in g.completions]
    clipped = [c.finish_reason == "length" for g in groups for c in g.completions]
    if not lengths:
        return {}
    reflective = reflection_rate(c.text for g in groups for c in g.completions)
    return {
        "response_length/mean": sum(lengths) / len(lengths),
        "response_length/max": float(max(lengths)),
        "response_length/clip_ratio": sum(clipped) / len(clipped),
        # Over every response of the step (the dashboard's estimate from 4 logged samples moved
        # in steps of 0.25).
        "reflection/rate": reflective if reflective is not None else 0.0,
    }
