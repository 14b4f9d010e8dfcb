"""The contracts between the driver and its workers: `RolloutEngine`, `Learner` and their data.

The driver (`eureka_trainer.driver`) only talks to these Protocols, so a backend is one class
registered under a name (`rollout.backend`, `learner.backend`):

- `RolloutEngine`: `hf` (transformers `generate`, CPU or GPU) in `eureka_trainer.rollout.hf`;
  `vllm` (GPU image) is written against this Protocol and registered in
  `eureka_trainer.rollout.ROLLOUT_BACKENDS`.
- `Learner`: `torch` and `deepspeed` in `eureka_trainer.learner`.

Everything exchanged here is plain Python (lists of ints and floats) plus the processor's
multimodal tensors, so it pickles through Ray's object store unchanged. No heavy import at
module level: this file is imported by the driver before Ray starts.

Token conventions (shared by every backend):
- `prompt_ids` are the processor's ids for the chat-templated prompt, image placeholder tokens
  already expanded (one `<|image_pad|>` per merged patch for Qwen2-VL); `mm_inputs` holds the
  matching processor outputs (`pixel_values`, `image_grid_thw`, ...). A backend must never
  sample a vision special token (`Completion.token_ids` contains none).
- `Completion.logprobs[i]` is the log-probability of `token_ids[i]` under the sampling
  distribution actually used (after temperature; top-p renormalisation is not applied to the
  reported value), so `len(logprobs) == len(token_ids)`.
- A completion ends with the EOS token when it stopped (`finish_reason == "stop"`); the EOS
  token is part of `token_ids` (it is trained on) and not of `text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

FinishReason = Literal["stop", "length"]


@dataclass
class GenerationRequest:
    """One prompt to sample from.

    `prompt_ids`: [L] token ids (image placeholders expanded). `mm_inputs`: processor tensors
    for this prompt alone, e.g. `pixel_values` [patches, C*T*P*P] and `image_grid_thw` [images, 3]
    (empty for text-only prompts). `images`: the PIL images (vLLM feeds these to its own
    processor). `text`: the templated prompt text, for backends that tokenize themselves.
    """

    prompt_ids: list[int]
    mm_inputs: dict[str, Any] = field(default_factory=dict)
    images: list[Any] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample: `n` responses per prompt, each at most `max_new_tokens` long.

    `seed` makes a call reproducible: the same seed, prompts and weights give the same tokens
    on the same backend and device.
    """

    n: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class Completion:
    """One sampled response. `token_ids` [T] and `logprobs` [T] are aligned (see module doc)."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: FinishReason = "stop"


@dataclass
class WeightBucket:
    """A group of parameters sent to a rollout engine in one call (never one call per tensor).

    `names[i]` is the learner's parameter name (as in `model.state_dict()` of the HF model);
    `tensors[i]` its full (un-sharded) value on the CPU, in the rollout dtype.
    """

    names: list[str]
    tensors: list[torch.Tensor]

    @property
    def nbytes(self) -> int:
        """Bytes of all tensors in the bucket."""
        return sum(t.numel() * t.element_size() for t in self.tensors)


@runtime_checkable
class RolloutEngine(Protocol):
    """Generates responses with the current policy weights.

    Lifecycle in `colocated` placement: `wake_up()` -> `generate(...)` -> `sleep()` ->
    (learner update) -> `load_weights(...)` (may be called while asleep: the engine keeps the
    weights and applies them; it must never sample with stale weights after `load_weights`
    returned). Backends without a memory-saving mode implement `sleep`/`wake_up` as no-ops.
    """

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        """`sampling.n` completions for each request: result[i][j] is sample j of prompt i."""
        ...

    def load_weights(self, buckets: Sequence[WeightBucket]) -> None:
        """Replace the named parameters with the given values (a subset of all is allowed)."""
        ...

    def sleep(self) -> None:
        """Release what memory can be released until `wake_up` (vLLM level-1 sleep)."""
        ...

    def wake_up(self) -> None:
        """Undo `sleep`; the next `generate` uses the latest loaded weights."""
        ...


@dataclass
class TrainSample:
    """One response to learn from: prompt, response and its per-token signals.

    `response_ids` [T]; `advantages` [T] (already per token: KL-in-reward and whitening
    applied by the driver); `old_logprobs` [T] are the log-probs of the policy that sampled
    (needed by PPO-clip; the rollout engine's values when `updateEpochs == 1`, the learner's own
    recomputation otherwise); `ref_logprobs` [T] only when the KL coefficient is above 0 and the
    KL goes into the loss.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    advantages: list[float]
    old_logprobs: list[float]
    mm_inputs: dict[str, Any] = field(default_factory=dict)
    ref_logprobs: list[float] | None = None


@runtime_checkable
class Learner(Protocol):
    """Owns the trainable policy, its optimizer and scheduler (one rank of a learner group)."""

    def logprobs(
        self, samples: Sequence[TrainSample], *, reference: bool = False
    ) -> list[list[float]]:
        """Per-token log-probs [T] of each sample's response under the current policy, or the
        frozen reference model when `reference` (which exists only when the KL coef is > 0)."""
        ...

    def update(self, samples: Sequence[TrainSample]) -> dict[str, float]:
        """`updateEpochs` passes of PPO over `samples` in train batches and micro batches;
        returns the averaged `policy/*` metrics (loss, clip fraction, grad norm, lr ...)."""
        ...

    def weight_buckets(self, bucket_bytes: int) -> list[WeightBucket]:
        """The full policy weights, grouped into buckets of about `bucket_bytes` each."""
        ...

    def state_items(self) -> list[tuple[str, torch.Tensor]]:
        """(name, full tensor) of every weight, as in the HF model's `state_dict()` (a
        collective at ZeRO-3: every rank calls it)."""
        ...

    def full_module(self) -> Any:
        """The policy module when it holds the full weights and updates them in place (a
        rollout engine in the same process may sample from it); None when it does not."""
        ...

    def save(self, path: str) -> None:
        """Write model, optimizer and scheduler state under the folder `path`."""
        ...

    def load(self, path: str) -> None:
        """Restore what `save` wrote."""
        ...


def bucketize(
    named: Sequence[tuple[str, torch.Tensor]] | Mapping[str, torch.Tensor], bucket_bytes: int
) -> list[WeightBucket]:
    """Group named tensors in order into buckets of at most `bucket_bytes` (a bigger tensor gets
    a bucket of its own)."""
    items = list(named.items()) if isinstance(named, Mapping) else list(named)
    buckets: list[WeightBucket] = []
    current = WeightBucket([], [])
    for name, tensor in items:
        size = tensor.numel() * tensor.element_size()
        if current.names and current.nbytes + size > bucket_bytes:
            buckets.append(current)
            current = WeightBucket([], [])
        current.names.append(name)
        current.tensors.append(tensor)
    if current.names:
        buckets.append(current)
    return buckets
