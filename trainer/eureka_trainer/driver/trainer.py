"""The driver: one RL step is `generate -> score -> filter -> advantages -> update -> sync ->
report`, each phase a method of `Trainer`, over Ray actors (rollout engines, learner ranks).

The same code runs on a laptop (`ray.init()`) and in a KubeRay cluster (`ray.init("auto")`);
only the actors' resources differ. Rewards are scored in the driver process by `BatchScorer`,
whose worker processes are the reward workers.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eureka_trainer.backends import SamplingConfig, TrainSample
from eureka_trainer.checkpoint import CheckpointManager
from eureka_trainer.config import RLJobSpec
from eureka_trainer.config.status import Progress
from eureka_trainer.driver.batch import (
    Group,
    attach_scores,
    recompute_old_logprobs,
    response_mask,
    response_metrics,
    sample_records,
    train_samples,
)
from eureka_trainer.driver.prompts import PromptSource, step_data_metrics
from eureka_trainer.driver.resume import checkpoint_meta
from eureka_trainer.driver.topology import Topology
from eureka_trainer.reporting.base import StatusSink

log = logging.getLogger(__name__)
MAX_FILTER_ROUNDS = 64
"""Rollout rounds one step may take to fill its batch through the filter before failing."""


@dataclass
class StepResult:
    """What one step produced (for the progress bar and tests)."""

    step: int
    metrics: dict[str, float]


class Trainer:
    """Runs an RLJob's training loop; `run()` returns when the last step is done."""

    def __init__(
        self,
        spec: RLJobSpec,
        topology: Topology,
        prompts: PromptSource,
        scorer: Any,
        sink: StatusSink,
        checkpoints: CheckpointManager,
        *,
        total_steps: int,
        on_step: Callable[[StepResult], None] | None = None,
        stop_after: int | None = None,
        evaluator: Any = None,
    ) -> None:
        from eureka_trainer.algos import OnlineFilter

        self.spec, self.topology, self.prompts, self.scorer = spec, topology, prompts, scorer
        self.sink, self.checkpoints = sink, checkpoints
        self.total_steps = total_steps
        self.on_step = on_step
        self.stop_after = stop_after
        self.evaluator = evaluator  # eureka_trainer.evaluation: eval/* metrics when due
        self.filter: Any = OnlineFilter(spec.algorithm.filter, spec.algorithm.rollout_batch_size)
        self.step = 0
        self.samples_seen = 0
        self.last_checkpoint: int | None = None
        self.nothing_to_train: str | None = None
        """Why a resumed run trained no step (it was already at its last step), else None."""
        self.data_before: dict[str, float] = {}
        """The data layer's totals at the end of the previous step (see `step_data_metrics`)."""

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        """Resume when asked, then train until `total_steps` (or `stop_after`, for tests)."""
        import torch

        from eureka_trainer.driver.collector import freeze_startup_objects, thaw

        self.maybe_resume()
        freeze_startup_objects()  # no 250 ms full collections over the driver's start-up objects
        threads = torch.get_num_threads()
        # The driver's tensors are small (prompt encoding, advantages, masks): one thread. A
        # second OpenMP thread would spin for about 10 ms after each of them (libgomp's
        # default), on the cores where the actors compute next.
        torch.set_num_threads(1)
        try:
            self._train()
        finally:
            torch.set_num_threads(threads)  # the caller's process may live on (tests, notebooks)
            thaw()

    def _train(self) -> None:
        """The loop of `run`, after resuming."""
        self.data_before = self.prompts.totals()
        self.sink.started(self.total_steps, self.progress())
        if self.step >= self.total_steps:
            self.nothing_to_train = (
                f"nothing to train: the checkpoint is at step {self.step} and the run has "
                f"{self.total_steps} steps (raise algorithm.maxSteps or epochs to train on, or "
                "start over with --restart)"
            )
            log.warning("%s", self.nothing_to_train)
        while self.step < self.total_steps:
            if self.stop_after is not None and self.step >= self.stop_after:
                return
            result = self.train_step()
            if self.on_step is not None:
                self.on_step(result)
        if self.last_checkpoint != self.step:
            self.save_checkpoint()
        log.info("%s", self.prompts.summary())

    def train_step(self) -> StepResult:
        """One full RL step; returns its metrics."""
        start = time.perf_counter()
        step = self.step + 1
        timers: dict[str, float] = {}
        groups, round_metrics = self.collect(step, timers)
        samples, adv_metrics = self.timed(timers, "advantages", lambda: self.advantages(groups))
        # The next prompts, encoded while the engines sampled, are finished before the
        # update: an encoding still running takes a core from the learner's threads, which
        # wait for each other at every operator (on 2 cores a fixed matmul probe at the start
        # of the update took 40-50 ms instead of 24-31 in a quarter of the steps).
        self.timed(timers, "prefetch_wait", self.prompts.settle)
        update_metrics = self.timed(timers, "update", lambda: self.update(samples))
        sync_metrics = self.sync()
        self.step = step
        self.samples_seen += sum(len(g.completions) for g in groups)
        metrics = {
            **round_metrics,
            **self.filter.metrics(),
            **response_metrics(groups),
            **adv_metrics,
            **update_metrics,
            **sync_metrics,
            **self.data_metrics(),
            **{f"time/{k}": v for k, v in timers.items()},
        }
        if self.step % self.spec.checkpoint.interval_steps == 0 or self.step == self.total_steps:
            metrics["time/checkpoint"] = self.timed_value(self.save_checkpoint)
        metrics.update(self.evaluate())
        metrics["time/step"] = time.perf_counter() - start
        self.report(groups, metrics)
        return StepResult(self.step, metrics)

    def data_metrics(self) -> dict[str, float]:
        """Lines skipped, prompts truncated or refused: this step's and the run's totals."""
        totals = self.prompts.totals()
        metrics = step_data_metrics(totals, self.data_before)
        self.data_before = totals
        return metrics

    def continues_after(self, step: int) -> bool:
        """Will this run train another step after `step`?"""
        last = (
            self.total_steps if self.stop_after is None else min(self.total_steps, self.stop_after)
        )
        return step < last

    @staticmethod
    def timed(timers: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        out = action()
        timers[name] = timers.get(name, 0.0) + time.perf_counter() - began
        return out

    @staticmethod
    def timed_value(action: Callable[[], Any]) -> float:
        began = time.perf_counter()
        action()
        return time.perf_counter() - began

    # -- phases ----------------------------------------------------------------------------------
    def collect(self, step: int, timers: dict[str, float]) -> tuple[list[Group], dict[str, float]]:
        """generate -> score -> filter, repeated until the filter holds a full batch."""
        rounds: list[dict[str, float]] = []
        for _ in range(MAX_FILTER_ROUNDS):
            if self.filter.ready:
                break
            began = time.perf_counter()
            groups = self.generate(step, len(rounds))
            scored = time.perf_counter()
            rounds.append(self.score(groups))
            filtered = time.perf_counter()
            self.filter_groups(groups, step)
            for name, start, end in (
                ("generate", began, scored),
                ("score", scored, filtered),
                ("filter", filtered, time.perf_counter()),
            ):
                timers[name] = timers.get(name, 0.0) + end - start
        else:
            raise RuntimeError(
                f"the online filter kept fewer than {self.filter.batch_groups} groups in "
                f"{MAX_FILTER_ROUNDS} rollout rounds: widen algorithm.filter.lower/upper"
            )
        return self.filter.take(), _mean_metrics(rounds)

    def generate(self, step: int, round_index: int) -> list[Group]:
        """Sample `samplesPerPrompt` responses for the next `rolloutBatchSize` prompts."""
        algo = self.spec.algorithm
        encoded = self.prompts.next_batch(algo.rollout_batch_size)

        def prefetch() -> None:
            # Another round or the next step will take the next prompts: they are encoded on
            # the driver's prefetch thread while the engines sample, once this batch is sent
            # (sending pickles it on this thread, under the GIL). Encoded during scoring
            # instead, they outlast a quick scoring and the update waits for them: on 2 cores,
            # steps alternating between the two in one run, 7 ms a demo step faster once the
            # answers are cached, no slower while math-verify is busy (docs/trainer.md).
            if self.continues_after(step):
                self.prompts.prefetch(algo.rollout_batch_size)

        # A fresh, reproducible seed per step and filter round (resume replays it).
        sampling = self.sampling(random.Random(f"{algo.seed}:{step}:{round_index}").getrandbits(31))
        completions = self.topology.generate(
            [e.request for e in encoded], sampling, keep=True, while_sampling=prefetch
        )
        return [
            Group(e.prompt_id, e.prompt_text, e.answer, e.request, c)
            for e, c in zip(encoded, completions, strict=True)
        ]

    def sampling(self, seed: int = 0) -> SamplingConfig:
        algo, rollout = self.spec.algorithm, self.spec.rollout
        return SamplingConfig(
            n=algo.samples_per_prompt,
            max_new_tokens=rollout.max_new_tokens,
            temperature=rollout.temperature,
            top_p=rollout.top_p,
            seed=seed,
        )

    def score(self, groups: Sequence[Group]) -> dict[str, float]:
        """Rule-based rewards of every response; returns the batch's `reward/*` metrics."""
        responses = [c.text for g in groups for c in g.completions]
        answers = [g.answer for g in groups for _ in g.completions]
        scores = self.scorer.score(responses, answers)
        attach_scores(groups, scores.total, scores.components, scores.valid)
        metrics = dict(scores.metrics)
        metrics.setdefault("reward/accuracy", _mean(scores.components.get("accuracy", [])))
        metrics.setdefault("reward/format", _mean(scores.components.get("format", [])))
        return metrics

    def filter_groups(self, groups: Sequence[Group], step: int) -> None:
        """Offer the groups with a parsable gold answer to the online accuracy filter."""
        usable = [g for g in groups if g.valid]
        if len(usable) < len(groups):
            log.warning(
                "step %d: %d prompt(s) skipped: gold answer unparsable",
                step,
                len(groups) - len(usable),
            )
        if usable:
            self.filter.add(usable, [g.accuracy for g in usable], step)

    def advantages(self, groups: Sequence[Group]) -> tuple[list[TrainSample], dict[str, float]]:
        """Token-level advantages (KL in the reward when asked) -> `TrainSample`s."""
        import torch

        from eureka_trainer.algos import compute_token_advantages, kl_penalty

        algo = self.spec.algorithm
        rewards = torch.tensor([g.total for g in groups], dtype=torch.float32)  # [P, n]
        mask = response_mask(groups)  # [P*n, T]
        recompute = recompute_old_logprobs(
            self.spec.rollout.backend, self.sampling(), algo.update_epochs
        )
        # The learner's log-prob passes need the samples before their advantages exist.
        samples = (
            train_samples(groups, torch.zeros_like(mask)) if recompute or algo.kl.coef > 0 else []
        )
        old = self.topology.logprobs(samples) if recompute else None
        kl, metrics = None, {}
        ref: list[list[float]] | None = None
        if algo.kl.coef > 0:
            ref = self.topology.logprobs(samples, reference=True)
            if algo.kl.placement == "reward":
                current = _padded(old or [s.old_logprobs for s in samples], mask.shape[1])
                kl = kl_penalty(current, _padded(ref, mask.shape[1]), algo.kl.estimator) * mask
                metrics["policy/kl_reward"] = float(kl.sum() / mask.sum().clamp(min=1))
        adv = compute_token_advantages(
            algo.estimator, rewards, mask, kl=kl, kl_coef=algo.kl.coef, reward_clip=algo.reward_clip
        )
        final = train_samples(groups, adv, old)
        if ref is not None:
            for sample, ref_row in zip(final, ref, strict=True):
                sample.ref_logprobs = ref_row
        metrics["advantages/mean"] = float(adv.sum() / mask.sum().clamp(min=1))
        metrics["advantages/abs_mean"] = float(adv.abs().sum() / mask.sum().clamp(min=1))
        return final, metrics

    def update(self, samples: Sequence[TrainSample]) -> dict[str, float]:
        """PPO on the learner group (the rollout engines sleep meanwhile when colocated)."""
        return self.topology.update(samples)

    def sync(self) -> dict[str, float]:
        """Push the new weights to every rollout engine, timed as `time/sync`."""
        return self.topology.sync()

    def evaluate(self) -> dict[str, float]:
        """`eval/*` on `data.evalFiles` every `evaluation.intervalSteps` steps and at the last step,
        with the weights just synced to the rollout engines (those of this step's checkpoint)."""
        from eureka_trainer.evaluation.training import maybe_evaluate

        return maybe_evaluate(self.evaluator, self.topology.generate, self.step, self.total_steps)

    def progress(self) -> Progress:
        return Progress(
            step=self.step,
            total_steps=self.total_steps,
            epoch=self.prompts.epoch,
            samples_seen=self.samples_seen,
            last_checkpoint_step=self.last_checkpoint,
        )

    def report(self, groups: Sequence[Group], metrics: dict[str, float]) -> None:
        """Metrics, progress and a few samples to the status sink; a non-finite metric is
        warned about here (the sinks record it, see `reporting.rundir`)."""
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if bad:
            log.warning(
                "step %d: non-finite metrics: %s",
                self.step,
                ", ".join(f"{k}={v}" for k, v in sorted(bad.items())),
            )
        samples = sample_records(groups, self.step, self.spec.logging.samples_per_step)
        self.sink.report(self.progress(), metrics, samples)

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly: learner, data position, filter, RNG, step."""
        import torch

        def write(folder: Path) -> None:
            self.topology.save(str(folder / "learner"))
            torch.save(
                {
                    "prompts": self.prompts.state_dict(),
                    "filter": self.filter.state_dict(),
                    "python_rng": random.getstate(),
                    "torch_rng": torch.get_rng_state(),
                    "samples_seen": self.samples_seen,
                },
                folder / "driver.pt",
            )

        meta = {"samplesSeen": self.samples_seen, **checkpoint_meta(self.spec)}
        self.checkpoints.save(self.step, meta, write)
        self.last_checkpoint = self.step

    def maybe_resume(self) -> None:
        """Load the newest complete checkpoint when `checkpoint.resume` is `auto`."""
        import torch

        latest = self.checkpoints.latest() if self.spec.checkpoint.resume == "auto" else None
        if latest is None:
            return
        step, folder = latest
        log.info("resuming from %s (step %d)", folder, step)
        self.topology.load(str(folder / "learner"))
        state = torch.load(folder / "driver.pt", weights_only=False)
        self.prompts.load_state_dict(state["prompts"])
        self.filter.load_state_dict(state["filter"])
        random.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.samples_seen = state["samples_seen"]
        self.step = self.last_checkpoint = step
        self.topology.sync()


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _mean_metrics(rounds: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per-key mean over filter rounds (counters such as timeouts are summed)."""
    keys = {k for r in rounds for k in r}
    summed = {
        "reward/timeouts",
        "reward/gold_parse_failures",
        "reward/refused",
        "reward/accuracy_invalid",
    }
    out = {}
    for key in keys:
        values = [r[key] for r in rounds if key in r]
        out[key] = sum(values) if key in summed else _mean(values)
    return out


def _padded(rows: Sequence[Sequence[float]], width: int) -> Any:
    import torch

    out = torch.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(list(row)[:width])
    return out
