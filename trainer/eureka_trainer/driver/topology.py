"""The Ray actors of a run and how work is spread over them.

- `colocated`: each learner rank and its rollout engine share one GPU's placement-group bundle
  (`driver.placement`); the engines sleep during the update when `rollout.sleepMode` is on.
- `split`: separate groups (the `rollout` and `learner` pools); nobody sleeps.
- hybrid: colocated with the `hf` backend and one engine per learner rank, each pair is one
  actor (`workers.HybridWorker`): one process, one copy of the model, weight sync in process.

Locally (`eureka run` without `--cluster`) a run has one engine and one learner rank; in a
cluster the pools of `resources` decide (engines = GPUs / tensorParallelSize, learner ranks =
`learner_world_size()`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.kept_inputs import KeptInputs
from eureka_trainer.sync import choose_method, make_sync

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """How many actors, and what each asks Ray for."""

    engines: int
    learners: int
    engine_gpus: float
    learner_gpus: float
    cpus_per_actor: float
    threads: int
    hybrid: bool = False


def plan_layout(spec: RLJobSpec, *, cluster: bool, local_cpus: int) -> Layout:
    """Actor counts and resources: all local on a laptop, the spec's pools in a cluster."""
    from dataclasses import replace

    layout = _counts(spec, cluster=cluster, local_cpus=local_cpus)
    hybrid = (
        spec.resources.placement == "colocated"
        and spec.rollout.backend in HYBRID_BACKENDS
        and layout.engines == layout.learners
    )
    return replace(layout, hybrid=hybrid)


KEPT_ROUNDS = 4
"""Filter rounds' worth of prompts whose image tensors a hybrid actor keeps for its update."""

HYBRID_BACKENDS = frozenset({"hf"})
"""Rollout backends that may live in the learner's process (vLLM keeps its own actors)."""


def _counts(spec: RLJobSpec, *, cluster: bool, local_cpus: int) -> Layout:
    res = spec.resources
    if not cluster:
        # The phases run one after another (generate, then update), so each actor may use
        # every local core while it works.
        return Layout(1, 1, 0.0, 0.0, cpus_per_actor=1.0, threads=max(1, local_cpus))
    colocated = res.placement == "colocated"
    rollout_pool = res.workers if colocated else res.rollout
    assert rollout_pool is not None
    tp = spec.rollout.tensor_parallel_size
    learners = spec.learner_world_size()
    if rollout_pool.total_gpus:
        engines = rollout_pool.total_gpus // tp
        share = 0.5 if colocated else 1.0  # colocated: an engine and a rank on each GPU
        return Layout(engines, learners, tp * share, share, cpus_per_actor=1.0, threads=1)
    return Layout(rollout_pool.replicas, learners, 0.0, 0.0, cpus_per_actor=1.0, threads=1)


class Topology:
    """Owns the actors; every call blocks until the actors answered."""

    def __init__(
        self,
        spec: RLJobSpec,
        model_path: str,
        learner_config: Any,
        layout: Layout,
        *,
        cluster: bool = False,
    ):
        import ray

        from eureka_trainer.driver.placement import reserve
        from eureka_trainer.driver.transport import register_tensor_transport

        register_tensor_transport()  # tensors to and from the actors travel as numpy arrays
        self.spec, self.layout = spec, layout
        self.colocated = spec.resources.placement == "colocated"
        # A hybrid's `hf` engine is the learner's own module: sleeping would free nothing.
        self.sleeps = self.colocated and spec.rollout.sleep_mode and not layout.hybrid
        self.asleep = False
        self.released = False  # learners handed their GPU memory back (`driver.colocation`)
        self.offload = spec.learner.offload != "none"
        self.learners: list[Any] = []
        self.engines: list[Any] = []
        # Hybrid actors keep the image tensors they sampled with for their update.
        capacity = KEPT_ROUNDS * spec.algorithm.rollout_batch_size  # prompts
        self.kept = KeptInputs(capacity) if layout.hybrid else None
        # The same placement code as `eureka run --plan` (driver.placement).
        self.reservation = reserve(spec, layout, cluster=cluster)
        try:
            if layout.hybrid:
                self._start_hybrids(ray, learner_config)
            else:
                self._start_groups(ray, model_path, learner_config)
            # Rendezvous at rank 0's node (never the driver's: the head pod has no rank).
            master = ray.get(self.learners[0].free_address.remote())
            ray.get([lr.start.remote(master) for lr in self.learners])
            # Actors are built asynchronously: wait here, so that a failing constructor stops
            # the run before its first step and step 1's timings do not include loading models.
            ray.get([actor.ready.remote() for actor in self.actors()])
            self.placements = ray.get([a.placement.remote() for a in self.actors()])
            for slot, where in zip(self._slots(), self.placements, strict=True):
                log.info(
                    "%s %d: node %s (%s), GPUs %s",
                    slot.role,
                    slot.rank,
                    where["node"][:12],
                    where["ip"],
                    ",".join(where["gpus"]) or "-",
                )
        except BaseException:
            self.shutdown()
            raise

    def actors(self) -> list[Any]:
        """Every actor once (hybrid actors are both engines and learners)."""
        return list({id(a): a for a in [*self.engines, *self.learners]}.values())

    def _slots(self) -> list[Any]:
        """The placement slot of each actor of `actors()`, in that order."""
        res = self.reservation
        return res.learners if self.layout.hybrid else [*res.engines, *res.learners]

    def _start_hybrids(self, ray: Any, config: Any) -> None:
        """One actor per engine + learner rank pair; the engines are the learners."""
        from eureka_trainer.driver.workers import HybridWorker

        spec, layout = self.spec, self.layout
        self.learners = [
            ray.remote(HybridWorker)
            .options(**slot.options)
            .remote(
                spec.learner.backend,
                config,
                layout.threads,
                slot.rank,
                layout.learners,
                spec.rollout.backend,
                spec.rollout,
            )
            for slot in self.reservation.learners
        ]
        self.engines = self.learners
        self.weight_sync = make_sync("in_process")

    def _start_groups(self, ray: Any, model_path: str, config: Any) -> None:
        """A rollout group and a learner group; weights travel through the object store."""
        from eureka_trainer.driver.workers import LearnerWorker, RolloutWorker

        spec, layout = self.spec, self.layout
        self.engines = [
            ray.remote(RolloutWorker)
            .options(**slot.options)
            .remote(
                spec.rollout.backend,
                model_path,
                spec.model.family,
                spec.model.dtype,
                spec.rollout,
                layout.threads,
                (spec.data.min_pixels, spec.data.max_pixels),  # vLLM resizes images itself
                spec.model.trust_remote_code,
            )
            for slot in self.reservation.engines
        ]
        if self.colocated:  # vLLM sizes its KV cache from the free memory it finds: it starts
            # (and sleeps) before any learner allocates on its GPU (`driver.colocation`).
            ray.get([engine.ready.remote() for engine in self.engines])
            self._sleep_engines()
        # Learners only prepare their process here; they allocate in `start` (after this).
        self.learners = [
            ray.remote(LearnerWorker)
            .options(**slot.options)
            .remote(spec.learner.backend, config, layout.threads, slot.rank, layout.learners)
            for slot in self.reservation.learners
        ]
        # split: a broadcast group (NCCL on GPUs); colocated: CUDA IPC (vLLM on GPUs) or the
        # object store.
        self.weight_sync = make_sync(
            choose_method(
                hybrid=False,
                colocated=self.colocated,
                gpus=layout.engine_gpus > 0,
                rollout_backend=spec.rollout.backend,
            )
        )

    # -- work --------------------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        keep: bool = False,
        while_sampling: Callable[[], None] | None = None,
    ) -> list[list[Completion]]:
        """Requests split in contiguous shares over the engines; results in request order.

        `keep`: the responses will be trained on at the next `update` (the trainer's rollouts,
        not evaluation's): hybrid actors keep the prompts' image tensors for it.
        `while_sampling`: called once every share is sent, before waiting for the engines."""
        import ray

        if self.asleep:
            self._release_learners()
            ray.get([e.wake_up.remote() for e in self.engines])
            self.asleep = False
        from eureka_trainer.rollout import for_backend

        backend = self.spec.rollout.backend
        refs = []
        for index, (engine, share) in enumerate(
            zip(self.engines, _split(list(requests), len(self.engines)), strict=True)
        ):
            if not share:
                continue
            args: list[Any] = [[for_backend(r, backend) for r in share], _reseeded(sampling, index)]
            if keep and self.kept is not None:
                args.append(self.kept.assign(share, index))
            refs.append(engine.generate.remote(*args))
        if while_sampling is not None:
            while_sampling()
        return [group for part in ray.get(refs) for group in part]

    def logprobs(
        self, samples: Sequence[TrainSample], reference: bool = False
    ) -> list[list[float]]:
        import ray

        shares = _split(list(samples), len(self.learners))
        parts = ray.get(
            [lr.logprobs.remote(s, reference) for lr, s in zip(self.learners, shares, strict=True)]
        )
        return [row for part in parts for row in part]

    def update(self, samples: Sequence[TrainSample]) -> dict[str, float]:
        """Each rank trains on its share; metrics are averaged over ranks."""
        import ray

        self._sleep_engines()
        if self.released:
            ray.get([lr.restore_memory.remote() for lr in self.learners])
            self.released = False
        shares = _split(list(samples), len(self.learners))
        try:
            calls = []
            for index, (learner, share) in enumerate(zip(self.learners, shares, strict=True)):
                if self.kept is None:
                    calls.append(learner.update.remote(share))
                else:  # the tensors this actor kept from its `generate` are not sent again
                    calls.append(learner.update.remote(*self.kept.strip(share, index)))
            parts = ray.get(calls)
        finally:
            if self.kept is not None:
                self.kept.clear()  # as every hybrid actor does after its update
        keys = parts[0].keys()
        return {k: sum(p[k] for p in parts) / len(parts) for k in keys}

    def sync(self) -> dict[str, float]:
        if self.asleep:  # the engines' weights wake inside the sync
            self._release_learners()
        return self.weight_sync.push(self.learners, self.engines)

    # -- colocated memory (the order is `driver.colocation`'s) ------------------------------------
    def _sleep_engines(self) -> None:
        import ray

        if self.sleeps and not self.asleep:
            ray.get([e.sleep.remote() for e in self.engines])
            self.asleep = True

    def _release_learners(self) -> None:
        import ray

        if self.sleeps and not self.released:
            figures = ray.get([lr.release_memory.remote(self.offload) for lr in self.learners])
            log.info("learners released their GPU memory before vLLM wakes: %s", figures[0])
            self.released = True

    def save(self, path: str) -> None:
        import ray

        ray.get([lr.save.remote(path) for lr in self.learners])

    def load(self, path: str) -> None:
        import ray

        ray.get([lr.load.remote(path) for lr in self.learners])

    def weights(self) -> dict[str, Any]:
        """Rank 0's full weights (tests compare runs with it)."""
        import ray

        weights: dict[str, Any] = ray.get(self.learners[0].parameter_digest.remote())
        return weights

    def shutdown(self) -> None:
        import ray

        for actor in self.actors():
            ray.kill(actor)
        # Else the reserved CPUs/GPUs block the next run in this Ray (and nobody else can release
        # them when __init__ fails: the caller never gets this object).
        reservation = getattr(self, "reservation", None)
        if reservation is not None:
            reservation.release()


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` contiguous shares, sizes differing by at most one."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (index < extra)
        out.append(items[start:end])
        start = end
    return out


def _reseeded(sampling: SamplingConfig, index: int) -> SamplingConfig:
    """Each engine gets its own seed so engines do not sample the same tokens."""
    from dataclasses import replace

    return replace(sampling, seed=sampling.seed + index)
