"""Builds a `Trainer` for an RLJob: assets, prompts, rewards, actors, checkpoints, sink."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eureka_trainer.checkpoint import CheckpointManager
from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.prompts import PromptSource, load_processor
from eureka_trainer.driver.topology import Topology, plan_layout
from eureka_trainer.learner.torch_learner import LearnerConfig
from eureka_trainer.reporting.base import StatusSink


@dataclass
class RunPaths:
    """Where a run's files go."""

    run_dir: Path
    checkpoints: Path
    assets: Path


def run_paths(spec: RLJobSpec, run_dir: Path) -> RunPaths:
    """A relative `checkpoint.storage.path` lives inside the run directory."""
    storage = Path(spec.checkpoint.storage.path)
    checkpoints = storage if storage.is_absolute() else run_dir / storage
    return RunPaths(run_dir, checkpoints, run_dir / "demo-assets")


def total_steps(spec: RLJobSpec, prompts: int) -> int:
    """`maxSteps`, or the steps of `epochs` passes over `prompts` prompts."""
    algo = spec.algorithm
    if algo.max_steps is not None:
        return algo.max_steps
    return max(1, algo.epochs * math.ceil(prompts / algo.rollout_batch_size))


def learner_config(
    spec: RLJobSpec, model_path: str, pad_id: int, steps: int, world: int
) -> LearnerConfig:
    """The learner's settings; batch sizes are per rank."""
    algo, learner = spec.algorithm, spec.learner
    samples = algo.rollout_batch_size * algo.samples_per_prompt
    optimizer_steps = steps * (samples // algo.train_batch_size) * algo.update_epochs
    return LearnerConfig(
        model_path=model_path,
        family=spec.model.family,
        trust_remote_code=spec.model.trust_remote_code,
        pad_id=pad_id,
        total_optimizer_steps=max(1, optimizer_steps),
        dtype=spec.model.dtype,
        frozen_prefixes=tuple(spec.model.frozen_prefixes),
        learning_rate=algo.learning_rate,
        adam_betas=algo.adam_betas,
        weight_decay=algo.weight_decay,
        max_grad_norm=algo.max_grad_norm,
        lr_schedule=algo.lr_schedule,
        warmup_ratio=algo.warmup_ratio,
        min_lr_ratio=algo.min_lr_ratio,
        train_batch_size=algo.train_batch_size // world,
        micro_batch_size=learner.micro_batch_size,
        update_epochs=algo.update_epochs,
        clip_low=algo.clip.low,
        clip_high=algo.clip.high,
        ratio_cap=algo.clip.ratio_cap,
        aggregation=algo.loss_aggregation,
        kl_coef=algo.kl.coef,
        kl_estimator=algo.kl.estimator,
        kl_in_loss=algo.kl.placement == "loss",
        temperature=spec.rollout.temperature or 1.0,
        gradient_checkpointing=learner.gradient_checkpointing,
        share_prompts=learner.share_prompts,
        seed=algo.seed,
        zero_stage=learner.zero_stage,
        offload=learner.offload,
    )


@dataclass
class Run:
    """Everything a run holds; `close()` releases the actors and reward workers."""

    trainer: Any
    topology: Topology
    scorer: Any
    paths: RunPaths

    def close(self) -> None:
        evaluator = getattr(self.trainer, "evaluator", None)
        if evaluator is not None:
            evaluator.close()
        self.scorer.close()
        self.topology.shutdown()


def build_run(
    spec: RLJobSpec,
    run_dir: Path,
    sink_factory: Any,
    *,
    cluster: bool = False,
    on_step: Any = None,
    stop_after: int | None = None,
) -> Run:
    """Resolve assets, start the actors and reward workers, and wire the `Trainer`.

    `sink_factory(resumed_step) -> StatusSink`: the sink is made once the resume step is known.
    """
    from eureka_trainer.demo.resolve import resolve_data_file, resolve_model
    from eureka_trainer.driver.trainer import Trainer
    from eureka_trainer.rewards import BatchScorer

    paths = run_paths(spec, run_dir)
    model_path = resolve_model(spec, paths.assets)
    files = [resolve_data_file(f, paths.assets) for f in spec.data.train_files]
    processor = load_processor(
        model_path, spec.model.family, trust_remote_code=spec.model.trust_remote_code
    )
    tokenizer = getattr(processor, "tokenizer", processor)
    prompts = PromptSource(spec.data, files, processor, spec.model.family, spec.algorithm.seed)
    steps = total_steps(spec, len(prompts))
    layout = plan_layout(spec, cluster=cluster, local_cpus=os.cpu_count() or 2)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = learner_config(spec, model_path, int(pad), steps, layout.learners)
    scorer = BatchScorer(spec.rewards)
    # Evaluation during training (spec.evaluation, data.evalFiles); built before the actors so a
    # bad eval record stops the job at once. See eureka_trainer.evaluation.training.
    from eureka_trainer.evaluation.training import build_evaluator

    evaluator = None
    try:
        evaluator = build_evaluator(spec, processor, paths, scorer)
        # Its own failure releases its actors and placement group (see Topology.__init__).
        topology = Topology(spec, model_path, config, layout, cluster=cluster)
    except BaseException:
        if evaluator is not None:
            evaluator.close()
        scorer.close()
        raise
    try:
        checkpoints = CheckpointManager(paths.checkpoints, spec.checkpoint.keep_last)
        latest = checkpoints.latest() if spec.checkpoint.resume == "auto" else None
        sink: StatusSink = sink_factory(latest[0] if latest else 0)
        trainer = Trainer(
            spec,
            topology,
            prompts,
            scorer,
            sink,
            checkpoints,
            total_steps=steps,
            on_step=on_step,
            stop_after=stop_after,
            evaluator=evaluator,
        )
    except BaseException:  # nobody else holds the actors yet: release them here
        if evaluator is not None:
            evaluator.close()
        Run(None, topology, scorer, paths).close()
        raise
    return Run(trainer, topology, scorer, paths)
