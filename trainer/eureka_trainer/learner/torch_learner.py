"""The `torch` learner: plain PyTorch AdamW on one process (the reference for `deepspeed`).

PPO-clip updates over `TrainSample`s in train batches and micro batches (gradients
accumulate), a learning-rate schedule per optimiser step, frozen parameter prefixes, and a
frozen reference model only when the KL coefficient is above 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eureka_trainer.algos import policy_loss
from eureka_trainer.backends import TrainSample, WeightBucket, bucketize
from eureka_trainer.learner.device import guard_inputs, resolve_device
from eureka_trainer.learner.modeling import (
    load_policy,
    pack,
    response_logprobs,
    to_lists,
    vision_token_ids,
)
from eureka_trainer.learner.shared_prompts import pack_prompts
from eureka_trainer.models.loading import checkpoint_layout
from eureka_trainer.registry import Registry

LR_SCHEDULES: Registry[Callable[[float, float], float]] = Registry("lr schedule")
LR_SCHEDULES.add("constant", lambda progress, floor: 1.0)
LR_SCHEDULES.add("linear", lambda progress, floor: max(0.0, 1.0 - progress))
LR_SCHEDULES.add("cosine", lambda progress, floor: 0.5 * (1 + math.cos(math.pi * progress)))
LR_SCHEDULES.add(
    "cosine_with_min_lr",
    lambda progress, floor: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)),
)


def lr_factor(step: int, total: int, warmup_ratio: float, schedule: str, floor: float) -> float:
    """Multiplier of the peak lr at optimiser step `step` of `total` (linear warm-up first)."""
    warmup = int(total * warmup_ratio)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return LR_SCHEDULES.get(schedule)(progress, floor)


@dataclass(frozen=True)
class LearnerConfig:
    """What a learner rank needs, resolved from the RLJob spec by the driver."""

    model_path: str
    family: str
    pad_id: int
    total_optimizer_steps: int
    dtype: str = "float32"
    frozen_prefixes: tuple[str, ...] = ()
    learning_rate: float = 1e-6
    adam_betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_schedule: str = "constant"
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.1
    train_batch_size: int = 8
    micro_batch_size: int = 8
    update_epochs: int = 1
    clip_low: float = 0.2
    clip_high: float = 0.2
    ratio_cap: float | None = None
    aggregation: str = "seq-mean-token-mean"
    kl_coef: float = 0.0
    kl_estimator: str = "k1"
    kl_in_loss: bool = False
    temperature: float = 1.0
    gradient_checkpointing: bool = False
    share_prompts: bool = True
    """One forward per distinct prompt of a micro batch (`learner.shared_prompts`)."""
    seed: int = 0
    zero_stage: int = 0
    offload: str = "none"
    device: str = "auto"
    """`auto`: the actor's GPU when Ray gave it one, else the CPU (see `learner.device`)."""
    trust_remote_code: bool = False


def freeze(model: Any, prefixes: Sequence[str]) -> int:
    """Turn off gradients of parameters whose name starts with a prefix; how many were frozen.

    A prefix matches the module name (`model.visual.`) or the checkpoint name without the
    leading `model.` (`visual.`, as in the model's safetensors files). A prefix matching
    nothing is an error (a typo would silently train everything)."""
    frozen = 0
    for prefix in prefixes:
        hits = [
            p
            for n, p in model.named_parameters()
            if n.startswith(prefix) or n.removeprefix("model.").startswith(prefix)
        ]
        if not hits:
            raise ValueError(f"model.frozenPrefixes: {prefix!r} matches no parameter")
        for param in hits:
            param.requires_grad_(False)
        frozen += len(hits)
    return frozen


class TorchLearner:
    """`Learner` on one process with torch AdamW."""

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        torch.manual_seed(config.seed)
        # Every model and every batch of this rank on one device (guarded at each forward).
        self.device = resolve_device(config.device)
        self.model = self._on_device(
            load_policy(
                config.model_path,
                config.family,
                config.dtype,
                trust_remote_code=config.trust_remote_code,
            )
        )
        freeze(self.model, config.frozen_prefixes)
        if config.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.suppressed = vision_token_ids(self.model.config)
        # The checkpoint's layout: a remote-code model's forward takes no KV cache of ours.
        layout = checkpoint_layout(config.model_path, config.family)
        self.prompt_rule = layout.prompt_positions if config.share_prompts else None
        self.reference = (
            self._on_device(
                load_policy(
                    config.model_path,
                    config.family,
                    config.dtype,
                    trust_remote_code=config.trust_remote_code,
                )
            )
            if config.kl_coef > 0
            else None
        )
        self.optimizer_steps = 0
        self._build_optimizer()
        self.rng = random.Random(config.seed)

    def _on_device(self, model: Any) -> Any:
        model = model.to(self.device)
        guard_inputs(model, self.device)
        return model

    # -- optimiser -------------------------------------------------------------------------------
    def _trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _build_optimizer(self) -> None:
        c = self.config
        params = self._trainable()
        self.optimizer = torch.optim.AdamW(
            params,
            lr=c.learning_rate,
            betas=c.adam_betas,
            weight_decay=c.weight_decay,
            fused=fused_adamw(params),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(
                step, c.total_optimizer_steps, c.warmup_ratio, c.lr_schedule, c.min_lr_ratio
            ),
        )

    def _backward(self, loss: torch.Tensor) -> None:
        loss.backward()  # type: ignore[no-untyped-call]

    def _step(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self._trainable(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def _train_mode(self, on: bool) -> None:
        self.model.train(on)

    def _policy_forward(self) -> Any:
        """What the policy's forward passes call (a wrapping engine, where there is one)."""
        return self.model

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- Learner protocol ------------------------------------------------------------------------
    def logprobs(
        self, samples: Sequence[TrainSample], *, reference: bool = False
    ) -> list[list[float]]:
        """Per-token log-probs of each response under the policy (or the reference)."""
        model = self.reference if reference else self._policy_forward()
        if model is None:
            raise RuntimeError("no reference model: algorithm.kl.coef is 0")
        out: list[list[float]] = []
        self._train_mode(False)
        with torch.no_grad():
            for chunk in _chunks(list(samples), self.config.micro_batch_size):
                batch = self._pack(chunk)
                logp, _, mask = response_logprobs(
                    model,
                    batch,
                    suppressed=self.suppressed,
                    temperature=self.config.temperature,
                    entropy=False,  # log-probs for PPO or the KL, no metrics
                )
                out.extend(to_lists(logp, mask))
        return out

    def update(self, samples: Sequence[TrainSample]) -> dict[str, float]:
        """PPO over `samples`: `updateEpochs` passes of train batches; averaged metrics."""
        c = self.config
        totals: dict[str, float] = {}
        count = 0
        self._train_mode(True)
        for _ in range(c.update_epochs):
            order = list(samples)
            if c.update_epochs > 1:
                self.rng.shuffle(order)
            for batch in _chunks(order, c.train_batch_size):
                metrics = self._optimizer_step(batch)
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        self._train_mode(False)
        result = {k: v / max(1, count) for k, v in totals.items()}
        result["lr"] = self.current_lr()
        return result

    def _optimizer_step(self, batch: Sequence[TrainSample]) -> dict[str, float]:
        micro = _chunks(list(batch), self.config.micro_batch_size)
        # Each micro loss is divided by the whole batch's count, so their sum is exactly the
        # full batch's loss for every aggregation (dividing by len(micro) is not, for token-mean).
        normalizer = _batch_normalizer(batch, self.config.aggregation)
        parts: list[tuple[dict[str, float], int]] = []
        for chunk in micro:
            loss, metrics = self._micro_loss(chunk, normalizer)
            self._backward(loss)
            parts.append((metrics, sum(len(s.response_ids) for s in chunk)))
        combined = combine_micro_metrics(parts)
        combined["policy/grad_norm"] = self._step()
        self.optimizer_steps += 1
        return combined

    def _micro_loss(
        self, chunk: Sequence[TrainSample], normalizer: float | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        batch = self._pack(chunk)
        logp, entropy, mask = response_logprobs(
            self._policy_forward(), batch, suppressed=self.suppressed, temperature=c.temperature
        )
        ref = None
        if c.kl_in_loss and c.kl_coef > 0:
            ref = _padded([s.ref_logprobs or [] for s in chunk], batch.width, self.device)
        return policy_loss(
            logp,
            _padded([s.old_logprobs for s in chunk], batch.width, self.device),
            _padded([s.advantages for s in chunk], batch.width, self.device),
            mask,
            clip_low=c.clip_low,
            clip_high=c.clip_high,
            ratio_cap=c.ratio_cap,
            aggregation=c.aggregation,
            ref_logprobs=ref,
            kl_coef=c.kl_coef,
            kl_estimator=c.kl_estimator,
            kl_in_loss=c.kl_in_loss,
            entropy=entropy,
            normalizer=normalizer,
        )

    def _pack(self, chunk: Sequence[TrainSample]) -> Any:
        """Each prompt once (`shared_prompts`) when the family allows and a prompt repeats,
        else whole prompt + response rows."""
        rows = (
            [s.prompt_ids for s in chunk],
            [s.response_ids for s in chunk],
            [s.mm_inputs for s in chunk],
        )
        config = self.model.config
        if self.prompt_rule is not None:
            shared = pack_prompts(*rows, self.config.pad_id, config, self.prompt_rule, self.device)
            if shared is not None:
                return shared
        return pack(*rows, self.config.pad_id, config, self.device)

    def weight_buckets(self, bucket_bytes: int) -> list[WeightBucket]:
        """Detached CPU copies of every tensor of the state dict, bucketed."""
        state = [(n, t.detach().to("cpu").clone()) for n, t in self.state_items()]
        return bucketize(state, bucket_bytes)

    def state_items(self) -> list[tuple[str, torch.Tensor]]:
        return list(self.model.state_dict().items())

    def full_module(self) -> Any:
        """The model, whose parameters are the full weights, updated in place."""
        return self.model

    def save(self, path: str) -> None:
        """Model, optimizer, scheduler and the learner's RNG into `path/learner.pt`."""
        Path(path).mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "optimizer_steps": self.optimizer_steps,
                "rng": self.rng.getstate(),
                "torch_rng": torch.get_rng_state(),
            },
            Path(path) / "learner.pt",
        )

    def load(self, path: str) -> None:
        """Restore what `save` wrote."""
        state = torch.load(Path(path) / "learner.pt", weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.optimizer_steps = state["optimizer_steps"]
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])


FUSED_ADAMW_DEVICES = frozenset({"cpu", "cuda", "xpu"})
"""Device types with a fused AdamW kernel in torch (torch/utils/_foreach_utils.py,
`_get_fused_kernels_supported_devices`; `meta`, which CPU tests use, has none)."""


def fused_adamw(params: Sequence[torch.Tensor]) -> bool:
    """Whether AdamW can take its fused kernel over `params` (floating point, one device type
    that has one).

    torch picks the per-parameter loop on the CPU by default (its `foreach` default covers CUDA,
    XPU and MTIA, not the CPU: `_get_foreach_kernels_supported_devices`): about 60
    small kernels a step over the demo model, 3.9 ms against 0.8 ms fused on 2 cores, and 15
    against 6-7 ms at 4x its width (8.1M parameters). TRL's default optimiser is the fused one
    too (`adamw_torch_fused`)."""
    types = {p.device.type for p in params}
    return (
        len(types) == 1
        and types <= FUSED_ADAMW_DEVICES
        and all(torch.is_floating_point(p) for p in params)
    )


SUMMED_METRICS = frozenset({"policy/loss"})
"""Micro-batch metrics that add up to the train batch's value: each micro loss is already
divided by the whole batch's normaliser (see `_optimizer_step`)."""


def combine_micro_metrics(parts: Sequence[tuple[dict[str, float], int]]) -> dict[str, float]:
    """One train batch's metrics from its micro batches' `(metrics, response tokens)`.

    `policy/loss` is summed (the micro losses sum to the batch loss); every other metric is a
    token mean over its micro batch, so it is weighted by the micro batch's tokens. The result
    does not depend on the micro batch size (an unweighted mean of the losses would report
    1/k of the loss over k micro batches)."""
    tokens = sum(count for _, count in parts)
    out: dict[str, float] = {}
    for metrics, count in parts:
        weight = count / tokens if tokens else 1.0 / len(parts)
        for key, value in metrics.items():
            out[key] = out.get(key, 0.0) + (value if key in SUMMED_METRICS else value * weight)
    return out


def _chunks(items: list[TrainSample], size: int) -> list[list[TrainSample]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _padded(
    rows: Sequence[Sequence[float]], width: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """[B, width] float32 tensor of the rows, zero-padded on the right, on `device`."""
    padded = [list(row[:width]) + [0.0] * (width - len(row[:width])) for row in rows]
    return torch.tensor(padded, dtype=torch.float32).reshape(len(rows), width).to(device)


def _batch_normalizer(batch: Sequence[TrainSample], aggregation: str) -> float:
    """What `aggregate_loss` divides by over a whole train batch: its response tokens for
    `token-mean`, else its sequences that have tokens (the learner's mask is the response)."""
    if aggregation == "token-mean":
        return float(max(1, sum(len(s.response_ids) for s in batch)))
    return float(max(1, sum(1 for s in batch if s.response_ids)))
