"""The `deepspeed` learner: the torch learner's PPO on a DeepSpeed engine (ZeRO 0-3).

On CUDA: bf16/fp16 per `model.dtype`, NCCL, optional CPU offload of the optimizer (and of the
parameters at ZeRO-3). On a CPU (tests, laptops): gloo and torch's Adam (`torch_adam`), since
DeepSpeed's fused CPU Adam needs a compiler toolchain. Gradient accumulation is DeepSpeed's:
one `engine.step()` per micro batch, the optimizer steps at the boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eureka_trainer.backends import WeightBucket, bucketize
from eureka_trainer.learner.device import guard_inputs
from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner, lr_factor

OFFLOAD_TARGETS: dict[str, tuple[bool, bool]] = {
    "none": (False, False),
    "optimizer": (True, False),
    "all": (True, True),
}
"""`learner.offload` -> (offload the optimizer state, offload the parameters)."""


def deepspeed_config(config: LearnerConfig, world: int, cuda: bool) -> dict[str, Any]:
    """The DeepSpeed config dict of a learner (per-rank batch sizes from `config`)."""
    accumulation = max(1, config.train_batch_size // config.micro_batch_size)
    optimizer_off, params_off = OFFLOAD_TARGETS[config.offload] if cuda else (False, False)
    zero: dict[str, Any] = {"stage": config.zero_stage}
    if optimizer_off and config.zero_stage > 0:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if params_off and config.zero_stage == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": config.micro_batch_size,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": config.micro_batch_size * accumulation * world,
        "gradient_clipping": config.max_grad_norm,
        "zero_optimization": zero,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": config.learning_rate,
                "betas": list(config.adam_betas),
                "weight_decay": config.weight_decay,
                # DeepSpeed's own CPU Adam needs a compiler; torch's works everywhere.
                "torch_adam": not cuda,
            },
        },
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cuda and config.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    elif cuda and config.dtype == "float16":
        ds["fp16"] = {"enabled": True}
    return ds


class DeepSpeedLearner(TorchLearner):
    """`Learner` on a DeepSpeed engine; ranks meet through torch.distributed."""

    def _build_optimizer(self) -> None:
        import deepspeed

        cuda = torch.cuda.is_available()
        if not cuda:
            _skip_shm_comm_build()
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
        world = torch.distributed.get_world_size()
        c = self.config
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=self.model,
            model_parameters=self._trainable(),
            config=deepspeed_config(c, world, cuda),
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(
                opt,
                lambda step: lr_factor(
                    step, c.total_optimizer_steps, c.warmup_ratio, c.lr_schedule, c.min_lr_ratio
                ),
            ),
        )
        # DeepSpeed computes on its accelerator's device for LOCAL_RANK (cuda:0 in a Ray actor
        # with one GPU, the CPU without): the batches and the reference model go there too.
        if torch.device(self.engine.device) != self.device:
            self.device = torch.device(self.engine.device)
            guard_inputs(self.model, self.device)
            if self.reference is not None:
                self.reference = self._on_device(self.reference)

    def _backward(self, loss: torch.Tensor) -> None:
        # The caller's micro losses are already normalised by the whole batch (they sum to it).
        self.engine.backward(loss, scale_wrt_gas=False)
        if self.engine.is_gradient_accumulation_boundary():
            # At ZeRO-0 in fp32 DeepSpeed clips with `clip_grad_norm_` and drops the norm
            # (engine.py `clip_fp32_gradients`), so `get_global_grad_norm()` stays None: take it
            # here, after the boundary's all-reduce and before `step()` clips and zeroes.
            self._own_norm = _grad_norm(self._trainable())
        self.engine.step()

    def _step(self) -> float:
        norm = self.engine.get_global_grad_norm()
        if norm is None:
            norm = getattr(self, "_own_norm", None)
        return float(norm) if norm is not None else float("nan")

    def _train_mode(self, on: bool) -> None:
        self.engine.train(on)

    def _policy_forward(self) -> Any:
        # Through the engine, never the bare module: ZeRO-3 counts micro steps in
        # `engine.forward` and, without it, each backward overwrites the accumulated gradient
        # instead of adding to it (only the last micro batch would be learned from).
        return self.engine

    def current_lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def state_items(self) -> list[tuple[str, torch.Tensor]]:
        """Full (gathered) tensors: ZeRO-3 partitions parameters across ranks."""
        if self.config.zero_stage < 3:
            return super().state_items()
        import deepspeed

        params = list(self.model.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return [(n, t.detach().clone()) for n, t in self.model.state_dict().items()]

    def full_module(self) -> Any:
        """The model below ZeRO-3 (full weights in place); None at ZeRO-3 (partitioned)."""
        return self.model if self.config.zero_stage < 3 else None

    def weight_buckets(self, bucket_bytes: int) -> list[WeightBucket]:
        state = [(n, t.to("cpu")) for n, t in self.state_items()]
        return bucketize(state, bucket_bytes) if self.engine.global_rank == 0 else []

    def save(self, path: str) -> None:
        """DeepSpeed checkpoint (model, optimizer, scheduler) plus the learner's RNG states."""
        Path(path).mkdir(parents=True, exist_ok=True)
        self.engine.save_checkpoint(
            path, tag="engine", client_state={"steps": self.optimizer_steps}
        )
        torch.save(
            {"rng": self.rng.getstate(), "torch_rng": torch.get_rng_state()},
            Path(path) / f"rng-rank{self.engine.global_rank}.pt",
        )

    def load(self, path: str) -> None:
        _, client = self.engine.load_checkpoint(path, tag="engine")
        self.optimizer_steps = int((client or {}).get("steps", 0))
        state = torch.load(Path(path) / f"rng-rank{self.engine.global_rank}.pt", weights_only=False)
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])


def _grad_norm(params: list[torch.nn.Parameter]) -> float | None:
    """L2 norm of the parameters' gradients (None when no parameter holds one, e.g. ZeRO keeps
    them in its own buffers)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return float(torch.nn.utils.get_total_norm(grads))


def _skip_shm_comm_build() -> None:
    """On a CPU DeepSpeed JIT-compiles a shared-memory all-reduce op at startup (minutes on two
    cores, and it needs a C++ toolchain); gloo's collectives are enough for a CPU learner."""
    import importlib

    # By module path: the attribute `deepspeed.comm.torch` is the torch package itself.
    ds_torch = importlib.import_module("deepspeed.comm.torch")
    ds_torch.build_shm_op = lambda: None  # type: ignore[attr-defined]
