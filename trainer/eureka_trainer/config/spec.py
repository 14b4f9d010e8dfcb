"""The RLJob spec: one pydantic model, the single source of truth.

The CRD's openAPIV3Schema, `kubectl explain` text, the dashboard's JSON schema and the trainer's
configuration are all generated from these classes. Defaults reproduce MM-EUREKA's recipe
(MM-Eureka-8B: RLOO, lr 3e-7, 128 prompts x 8 samples, train batch 64, ZeRO, vLLM colocated).
Each field's docstring is its documentation. `resources` (pools, head, pod settings) is declared
in `config.resources`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eureka_trainer.config.base import ApiModel, field_error
from eureka_trainer.config.resources import ResourcesSpec

ModelFamily = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "internvl", "text"]
Estimator = Literal["grpo", "rloo", "reinforce", "reinforce_baseline", "dr_grpo"]
GROUP_ESTIMATORS: frozenset[str] = frozenset({"grpo", "rloo", "reinforce_baseline", "dr_grpo"})
RewardMode = Literal["instruct", "boxed"]


class SecretKeyRef(ApiModel):
    """A reference to one key of a Kubernetes Secret in the RLJob's namespace (never the value)."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key inside the Secret."""


class ModelSpec(ApiModel):
    """The policy model to train."""

    name: str = Field(min_length=1)
    """Model name on a hub (e.g. `Qwen/Qwen2.5-VL-7B-Instruct`) or a local / mounted directory."""
    family: ModelFamily = "qwen2_5_vl"
    """Architecture family: decides the processor, the image inputs and the blank-image rule
    (InternVL gets a 224x224 white image for text-only prompts; other families get none)."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Parameter dtype of learner and rollout (float32 on CPU-only machines)."""
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention kernel: `auto` picks flash-attn 2 on CUDA when installed, else PyTorch SDPA."""
    frozen_prefixes: list[str] = Field(default_factory=list)
    """Parameter-name prefixes kept frozen during training: the vision tower is `visual.` in
    the Qwen-VL families and `vision_tower.` (projector: `multi_modal_projector.`) in InternVL
    (`vision_model.`, projector `mlp1.`, in the remote-code InternVL2.5 chat checkpoints)."""
    hub_token_secret: SecretKeyRef | None = None
    """Secret key holding a model-hub token, exposed to the trainer as `HF_TOKEN`."""
    trust_remote_code: bool = False
    """Run the Python code that comes with the model from its hub repository (transformers'
    `trust_remote_code`). Off by default; on a cluster the operator refuses a job that sets it
    unless its administrator allowed remote code (`eureka operator --allow-remote-code`, Helm
    `operator.allowRemoteCode`). Needed for the original InternVL2.5 chat checkpoints
    (`OpenGVLab/InternVL2_5-*`, model_type `internvl_chat`, family `internvl`, vision tower
    `vision_model.`, projector `mlp1.`); a job without it is refused before loading."""


class DataSpec(ApiModel):
    """Prompts, in either of MM-EUREKA's JSONL formats (`conversations` + `image_urls`, or `message`)."""

    train_files: list[str] = Field(min_length=1)
    """JSONL files of training prompts, each line `{id, conversations|message, answer, image_urls?}`."""
    eval_files: list[str] = Field(default_factory=list)
    """JSONL files of evaluation prompts (same formats)."""
    image_root: str | None = None
    """Folder that relative `file://` image paths are resolved against."""
    max_prompt_length: int = Field(default=2048, ge=16)
    """Prompt length limit in tokens, image tokens included; longer prompts are truncated and counted."""
    bad_lines: Literal["fail", "skip"] = "fail"
    """What a malformed line does: `fail` stops with file:line and field; `skip` skips and counts it."""
    shuffle: bool = True
    """Shuffle prompts each epoch (seeded, deterministic, resumable)."""
    min_pixels: int = Field(default=4 * 28 * 28, ge=1)
    """Smallest image size in pixels after resizing (Qwen2-VL family)."""
    max_pixels: int = Field(default=640 * 28 * 28, ge=1)
    """Largest image size in pixels after resizing (Qwen2-VL family)."""

    @model_validator(mode="after")
    def _pixels_ordered(self) -> DataSpec:
        if self.min_pixels > self.max_pixels:
            raise field_error("minPixels", "must be <= maxPixels")
        return self


class RewardSpec(ApiModel):
    """One rule-based reward component, picked by name from the reward registry."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_.:]*$")
    """Registered reward name: `accuracy`, `format`, `repetition`, or `module:function` of a reward
    module installed in the trainer image (never code written in the spec)."""
    weight: float | None = None
    """Weight in the total reward. Unset: the component's default (accuracy 1.0; format 0.5 in
    `instruct` mode and 1.0 in `boxed` mode; repetition 1.0)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Options passed to the component (e.g. `minThinkChars` for boxed format, `ngram` for repetition)."""

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        # A typo (`acuracy`) used to pass here and fail only when the trainer built its scorer.
        # `module:function` names are resolved by the trainer, where the module is installed.
        from eureka_trainer.rewards.registry import REGISTRY  # rewards imports config: lazily

        if ":" not in name and name not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise PydanticCustomError(
                "reward_name",
                "unknown reward {name}; use one of {known}, or module:function of an installed "
                "module",
                {"name": repr(name), "known": known},
            )
        return name


def _default_rewards() -> list[RewardSpec]:
    return [RewardSpec(name="accuracy", weight=1.0), RewardSpec(name="format", weight=0.5)]


_DEFAULT_WEIGHTS: dict[tuple[str, str], float] = {
    ("format", "instruct"): 0.5,
    ("format", "boxed"): 1.0,
}


class RewardsSpec(ApiModel):
    """How responses are scored: the components, the answer mode and the per-sample limits."""

    mode: RewardMode = "instruct"
    """`instruct`: `<think>..</think><answer>..</answer>`; `boxed`: a pretrained ("zero") model that
    thinks in `<think>` and puts the final answer in the last `\\boxed{}`."""
    components: list[RewardSpec] = Field(default_factory=_default_rewards, min_length=1)
    """Reward components and weights; the total reward is their weighted sum."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    """Hard limit per sample; a sample that exceeds it scores 0 and is counted."""
    workers: int = Field(default=0, ge=0)
    """Reward worker processes (0: one per CPU core of the driver)."""

    @model_validator(mode="after")
    def _fill_weights(self) -> RewardsSpec:
        names = [c.name for c in self.components]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise field_error("components", f"reward {dupes[0]!r} is listed more than once")
        for component in self.components:
            if component.weight is None:
                component.weight = _DEFAULT_WEIGHTS.get((component.name, self.mode), 1.0)
        return self


class KLSpec(ApiModel):
    """KL regularisation against a frozen reference model (built only when coef > 0)."""

    coef: float = Field(default=0.0, ge=0)
    """KL coefficient; 0 (MM-EUREKA's setting) builds no reference model."""
    estimator: Literal["k1", "k2", "k3"] = "k1"
    """k1 = log r, k2 = (log r)^2 / 2, k3 = exp(-log r) - 1 + log r (clamped to [-10, 10] per
    token, as verl and OpenRLHF do)."""
    placement: Literal["reward", "loss"] = "reward"
    """`reward`: -coef * KL added to each token's reward; `loss`: coef * KL added to the policy loss."""


class ClipSpec(ApiModel):
    """PPO clipping of the importance ratio."""

    low: float = Field(default=0.2, gt=0, lt=1)
    """Lower clip epsilon: the ratio is clipped at 1 - low."""
    high: float = Field(default=0.2, gt=0)
    """Upper clip epsilon: the ratio is clipped at 1 + high (clip-higher when above `low`)."""
    ratio_cap: float | None = Field(default=None, gt=1)
    """Dual-clip cap on the ratio for negative advantages (MM-EUREKA's qwen recipe: 3.0); unset: none."""


class FilterSpec(ApiModel):
    """Online accuracy filter: keep a prompt group iff lower <= mean accuracy <= upper."""

    enabled: bool = False
    """Turn the filter on (MM-Eureka-8B: off; the qwen recipe: on with 0.1 / 0.9)."""
    lower: float = Field(default=0.0, ge=0, le=1)
    """Inclusive lower bound of a group's mean accuracy."""
    upper: float = Field(default=1.0, ge=0, le=1)
    """Inclusive upper bound of a group's mean accuracy."""
    freezing_filter_steps: int = Field(default=0, ge=0)
    """The filter acts only once the global step is above this."""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> FilterSpec:
        if self.lower > self.upper:
            raise field_error("lower", f"{self.lower} must be <= upper ({self.upper})")
        return self


class AlgorithmSpec(ApiModel):
    """The RL algorithm: advantage estimator, policy loss, optimiser and batch sizes."""

    estimator: Estimator = "rloo"
    """Advantage estimator: `grpo` (group-normalised), `rloo`, `reinforce` (REINFORCE++),
    `reinforce_baseline`, `dr_grpo` (group mean removed, no std)."""
    samples_per_prompt: int = Field(default=8, ge=1)
    """Responses sampled per prompt (the group size n)."""
    rollout_batch_size: int = Field(default=128, ge=1)
    """Prompts per step (after the filter refills, when it is on)."""
    train_batch_size: int = Field(default=64, ge=1)
    """Samples per optimiser step; rolloutBatchSize x samplesPerPrompt must be a multiple."""
    update_epochs: int = Field(default=1, ge=1)
    """Passes of the optimiser over each step's samples (old log-probs are computed only when > 1)."""
    epochs: int = Field(default=1, ge=1)
    """Passes over the training data (episodes)."""
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many steps (unset: run every epoch)."""
    learning_rate: float = Field(default=3e-7, gt=0)
    """Peak learning rate."""
    lr_schedule: Literal["cosine_with_min_lr", "cosine", "linear", "constant"] = (
        "cosine_with_min_lr"
    )
    """Learning-rate schedule after warm-up."""
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    """Fraction of steps of linear warm-up."""
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    """Floor of `cosine_with_min_lr`, as a fraction of the peak."""
    adam_betas: tuple[float, float] = (0.9, 0.95)
    """Adam betas."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Adam weight decay."""
    max_grad_norm: float = Field(default=1.0, gt=0)
    """Gradient-norm clip."""
    kl: KLSpec = Field(default_factory=KLSpec)
    """KL regularisation."""
    clip: ClipSpec = Field(default_factory=ClipSpec)
    """PPO clipping."""
    loss_aggregation: Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum"] = (
        "seq-mean-token-mean"
    )
    """How token losses become one number: per-sequence token mean then batch mean (MM-EUREKA),
    a token mean over the batch (DAPO), or per-sequence token sum then batch mean."""
    reward_clip: float = Field(default=10.0, gt=0)
    """Rewards are clamped to [-rewardClip, rewardClip]."""
    filter: FilterSpec = Field(default_factory=FilterSpec)
    """Online accuracy filter."""
    seed: int = 42
    """Seed of sampling, shuffling and initialisation."""

    @model_validator(mode="after")
    def _batches_consistent(self) -> AlgorithmSpec:
        if self.estimator in GROUP_ESTIMATORS and self.samples_per_prompt < 2:
            raise field_error(
                "samplesPerPrompt", f"must be >= 2 for the group estimator {self.estimator!r}"
            )
        samples = self.rollout_batch_size * self.samples_per_prompt
        if samples % self.train_batch_size:
            raise field_error(
                "trainBatchSize",
                f"{self.train_batch_size} must divide rolloutBatchSize x samplesPerPrompt ({samples})",
            )
        return self


class RolloutSpec(ApiModel):
    """Response generation."""

    backend: Literal["vllm", "hf"] = "vllm"
    """`vllm` (GPU image) or `hf` (transformers generate; runs on a CPU)."""
    temperature: float = Field(default=1.0, ge=0)
    """Sampling temperature (0: greedy)."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling probability mass."""
    max_new_tokens: int = Field(default=4096, ge=1)
    """Generation length limit per response."""
    gpu_memory_utilization: float = Field(default=0.7, gt=0, le=1)
    """Fraction of GPU memory vLLM may take."""
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs per vLLM engine."""
    sleep_mode: bool = True
    """Colocated only: vLLM releases its GPU memory during the update (level 1 sleep)."""
    enforce_eager: bool = False
    """Disable CUDA graphs in vLLM (slower, less memory)."""


class LearnerSpec(ApiModel):
    """Policy optimisation."""

    backend: Literal["deepspeed", "torch"] = "deepspeed"
    """`deepspeed` (ZeRO) or plain `torch`."""
    zero_stage: Literal[0, 1, 2, 3] = 1
    """DeepSpeed ZeRO stage."""
    offload: Literal["none", "optimizer", "all"] = "optimizer"
    """DeepSpeed offload to host memory: none, the optimizer state (Adam offload), or optimizer and parameters."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass."""
    micro_batch_size: int = Field(default=1, ge=1)
    """Samples per forward/backward pass on one learner rank (gradients accumulate)."""
    share_prompts: bool = True
    """Run each prompt of a micro batch once and its responses against its KV cache, instead of
    every prompt + response row whole (same log-probs and gradients up to float rounding).
    Takes effect when a micro batch holds several responses to one prompt (`microBatchSize` of
    `samplesPerPrompt` or more for whole groups); under gradient checkpointing the prompts'
    pass keeps its activations (one copy per prompt) and the responses' pass is checkpointed."""


class CheckpointStorage(ApiModel):
    """Where checkpoints go."""

    claim_name: str | None = None
    """PersistentVolumeClaim mounted at `path` in every pod (unset: an emptyDir, lost with the pods)."""
    path: str = "/checkpoints"
    """Checkpoint folder (inside the pods; a local folder under `eureka run`'s output when relative)."""


class CheckpointSpec(ApiModel):
    """Checkpoints and resume."""

    interval_steps: int = Field(default=50, ge=1)
    """Save every this many steps (and at the end)."""
    storage: CheckpointStorage = Field(default_factory=CheckpointStorage)
    """Where checkpoints are written."""
    keep_last: int = Field(default=3, ge=1)
    """Checkpoints kept; older ones are deleted."""
    resume: Literal["auto", "never"] = "auto"
    """`auto`: continue from the newest complete checkpoint when one exists."""


class RunPolicy(ApiModel):
    """Lifecycle of the job on the cluster (mapped onto the KubeRay RayJob)."""

    suspend: bool = False
    """Suspend the job: its Ray cluster is deleted; unsuspend to start again (resumes from a checkpoint)."""
    backoff_limit: int = Field(default=0, ge=0)
    """Retries of a failed run before the job fails."""
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    """Fail the job when it has run this long."""
    pre_running_deadline_seconds: int | None = Field(default=None, ge=1)
    """Fail the job when it is not running this long after submission (e.g. GPUs never scheduled)."""
    ttl_seconds_after_finished: int = Field(default=0, ge=0)
    """Delete the Ray cluster (head and GPU workers) this long after the job finishes. 0: at
    once, freeing the GPUs; the driver's log stays in the RayJob's submitter pod, checkpoints
    and TensorBoard events on the checkpoint volume."""


class TensorBoardSpec(ApiModel):
    """TensorBoard event files."""

    enabled: bool = True
    """Write TensorBoard events next to the checkpoints."""


class WandbSpec(ApiModel):
    """Weights & Biases logging."""

    enabled: bool = False
    """Log to W&B."""
    project: str = "eureka"
    """W&B project."""
    entity: str | None = None
    """W&B entity (team or user)."""
    api_key_secret: SecretKeyRef | None = None
    """Secret key holding the W&B API key (the key itself never appears in the spec)."""

    @model_validator(mode="after")
    def _key_when_enabled(self) -> WandbSpec:
        if self.enabled and self.api_key_secret is None:
            raise field_error("apiKeySecret", "is required when W&B is enabled")
        return self


class LoggingSpec(ApiModel):
    """Metrics and samples."""

    tensorboard: TensorBoardSpec = Field(default_factory=TensorBoardSpec)
    """TensorBoard."""
    wandb: WandbSpec = Field(default_factory=WandbSpec)
    """Weights & Biases."""
    samples_per_step: int = Field(default=4, ge=0, le=64)
    """Prompt / response / reward records kept per step."""


class EvaluationSpec(ApiModel):
    """Evaluation on `data.evalFiles` during and after training."""

    interval_steps: int = Field(default=0, ge=0)
    """Evaluate every this many steps (0: only at the end, when eval files exist)."""
    template: Literal["original", "reasoning_instruct", "reasoning_pretrain"] = "reasoning_instruct"
    """Prompt template of the eval prompts."""
    temperature: float = Field(default=0.0, ge=0)
    """0: greedy decoding."""
    samples: int = Field(default=1, ge=1)
    """Samples per prompt (pass@k and majority@k when above 1)."""
    max_new_tokens: int = Field(default=4096, ge=1)
    """Generation length limit."""


class RLJobSpec(ApiModel):
    """What to train, on what, how, and with what resources."""

    model: ModelSpec
    """The policy model."""
    data: DataSpec
    """Training and evaluation prompts."""
    rewards: RewardsSpec = Field(default_factory=RewardsSpec)
    """Rule-based rewards."""
    algorithm: AlgorithmSpec = Field(default_factory=AlgorithmSpec)
    """The RL algorithm."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """Generation."""
    learner: LearnerSpec = Field(default_factory=LearnerSpec)
    """Optimisation."""
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    """Pods, GPUs and scheduling."""
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    """Checkpoints and resume."""
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    """Lifecycle on the cluster."""
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    """Metrics and samples."""
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    """Evaluation."""

    @model_validator(mode="after")
    def _cross_section_checks(self) -> RLJobSpec:
        for problem in (
            _micro_batch_problem(self),
            _placement_problem(self),
            _checkpoint_mount_problem(self),
            _secret_env_problem(self),
        ):
            if problem:
                raise field_error(*problem)
        return self

    def learner_world_size(self) -> int:
        """Learner ranks: GPUs of the learner (or colocated) pool, or its pods on CPU."""
        pool = (
            self.resources.workers
            if self.resources.placement == "colocated"
            else self.resources.learner
        )
        assert pool is not None
        return pool.total_gpus or pool.replicas


def _micro_batch_problem(spec: RLJobSpec) -> tuple[str, str] | None:
    """(field path, message) when the train batch does not split over ranks and micro batches."""
    world = spec.learner_world_size()
    per_rank, rest = divmod(spec.algorithm.train_batch_size, world)
    if rest:
        return (
            "algorithm.trainBatchSize",
            f"{spec.algorithm.train_batch_size} must be a multiple of the learner ranks ({world})",
        )
    if per_rank % spec.learner.micro_batch_size:
        return (
            "learner.microBatchSize",
            f"{spec.learner.micro_batch_size} must divide algorithm.trainBatchSize per learner "
            f"rank ({per_rank})",
        )
    return None


def _placement_problem(spec: RLJobSpec) -> tuple[str, str] | None:
    """(field path, message) when the rollout engines do not fit the pool's GPUs."""
    res, tp = spec.resources, spec.rollout.tensor_parallel_size
    pool = res.workers if res.placement == "colocated" else res.rollout
    assert pool is not None
    where = "resources.workers" if res.placement == "colocated" else "resources.rollout"
    if spec.rollout.backend == "vllm" and pool.gpus == 0:
        return ("rollout.backend", f"vllm needs GPUs but {where}.gpus is 0 (use `hf` on a CPU)")
    if pool.gpus % tp:
        return (
            "rollout.tensorParallelSize",
            f"{tp} must divide {where}.gpus ({pool.gpus}): an engine cannot span pods",
        )
    return None


def _checkpoint_mount_problem(spec: RLJobSpec) -> tuple[str, str] | None:
    """(field path, message) when a volume mount takes the checkpoint folder's place."""
    path = spec.checkpoint.storage.path.rstrip("/")
    for mount in spec.resources.volume_mounts:
        if mount.mount_path == path:
            return (
                "resources.volumeMounts",
                f"{mount.mount_path} is checkpoint.storage.path (use checkpoint.storage.claimName "
                "for the checkpoint volume)",
            )
    return None


def _secret_env_problem(spec: RLJobSpec) -> tuple[str, str] | None:
    """(field path, message) when `resources.env` sets a variable a secret reference sets."""
    from_secrets = {
        "HF_TOKEN": "model.hubTokenSecret" if spec.model.hub_token_secret else None,
        "WANDB_API_KEY": "logging.wandb.apiKeySecret"
        if spec.logging.wandb.api_key_secret
        else None,
    }
    for env in spec.resources.env:
        if from_secrets.get(env.name):
            return ("resources.env", f"{env.name} is already set from {from_secrets[env.name]}")
    return None
