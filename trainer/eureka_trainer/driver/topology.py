"""The Ray actors of a run and how work is spread over them.

- `colocated`: rollout engines and learner ranks share one placement group (and, on GPUs, the
  same devices); the engines sleep during the update when `rollout.sleepMode` is on.
- `split`: separate groups (the `rollout` and `learner` pools); nobody sleeps.
- hybrid: colocated with the `hf` backend and one engine per learner rank, each pair is one
  actor (`workers.HybridWorker`): one process, one copy of the model, weight sync in process.

Locally (`eureka run` without `--cluster`) a run has one engine and one learner rank; in a
cluster the pools of `resources` decide (engines = GPUs / tensorParallelSize, learner ranks =
`learner_world_size()`).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.config import RLJobSpec
from eureka_trainer.sync import make_sync


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Topology:
    """Owns the actors; every call blocks until the actors answered."""

    def __init__(self, spec: RLJobSpec, model_path: str, learner_config: Any, layout: Layout):
        import ray

        from eureka_trainer.driver.transport import register_tensor_transport

        register_tensor_transport()  # tensors to and from the actors travel as numpy arrays
        self.spec, self.layout = spec, layout
        self.colocated = spec.resources.placement == "colocated"
        # A hybrid's `hf` engine is the learner's own module: sleeping would free nothing.
        self.sleeps = self.colocated and spec.rollout.sleep_mode and not layout.hybrid
        self.asleep = False
        self.learners: list[Any] = []
        self.engines: list[Any] = []
        options = self._placement(ray)
        master = f"{ray.util.get_node_ip_address()}:{_free_port()}"  # type: ignore[no-untyped-call]
        if layout.hybrid:
            self._start_hybrids(ray, learner_config, master, options)
        else:
            self._start_groups(ray, model_path, learner_config, master, options)
        # Actors are built asynchronously: wait here, so that a failing constructor stops the
        # run before its first step and step 1's timings do not include loading the models.
        ray.get([actor.ready.remote() for actor in self.actors()])

    def actors(self) -> list[Any]:
        """Every actor once (hybrid actors are both engines and learners)."""
        return list({id(a): a for a in [*self.engines, *self.learners]}.values())

    def _start_hybrids(self, ray: Any, config: Any, master: str, options: dict[str, Any]) -> None:
        """One actor per engine + learner rank pair; the engines are the learners."""
        from eureka_trainer.driver.workers import HybridWorker

        spec, layout = self.spec, self.layout
        hybrid_cls = ray.remote(HybridWorker).options(
            num_cpus=layout.cpus_per_actor,
            num_gpus=layout.engine_gpus + layout.learner_gpus,
            **options,
        )
        self.learners = [
            hybrid_cls.remote(
                spec.learner.backend,
                config,
                layout.threads,
                rank,
                layout.learners,
                master,
                spec.rollout.backend,
                spec.rollout,
            )
            for rank in range(layout.learners)
        ]
        self.engines = self.learners
        self.weight_sync = make_sync("in_process")

    def _start_groups(
        self, ray: Any, model_path: str, config: Any, master: str, options: dict[str, Any]
    ) -> None:
        """A rollout group and a learner group; weights travel through the object store."""
        from eureka_trainer.driver.workers import LearnerWorker, RolloutWorker

        spec, layout = self.spec, self.layout
        rollout_cls = ray.remote(RolloutWorker).options(
            num_cpus=layout.cpus_per_actor, num_gpus=layout.engine_gpus, **options
        )
        learner_cls = ray.remote(LearnerWorker).options(
            num_cpus=layout.cpus_per_actor, num_gpus=layout.learner_gpus, **options
        )
        self.learners = [
            learner_cls.remote(
                spec.learner.backend, config, layout.threads, rank, layout.learners, master
            )
            for rank in range(layout.learners)
        ]
        self.engines = [
            rollout_cls.remote(
                spec.rollout.backend,
                model_path,
                spec.model.family,
                spec.model.dtype,
                spec.rollout,
                layout.threads,
                spec.model.trust_remote_code,
            )
            for _ in range(layout.engines)
        ]
        # split: a broadcast group (NCCL on GPUs); colocated vLLM: the object store (CUDA IPC
        # handles would fit here, not implemented).
        self.weight_sync = make_sync("object_store" if self.colocated else "broadcast")

    def _placement(self, ray: Any) -> dict[str, Any]:
        """Colocated: one placement group bundle per engine+rank pair (same node, same GPU)."""
        if not self.colocated:
            return {}
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        layout = self.layout
        bundle = {"CPU": 2 * layout.cpus_per_actor}
        if layout.engine_gpus:
            bundle["GPU"] = layout.engine_gpus + layout.learner_gpus
        group = placement_group([bundle] * max(layout.engines, layout.learners), strategy="PACK")
        ray.get(group.ready())
        self.placement_group = group
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=group)}

    # -- work --------------------------------------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        """Requests split in contiguous shares over the engines; results in request order."""
        import ray

        if self.asleep:
            ray.get([e.wake_up.remote() for e in self.engines])
            self.asleep = False
        shares = _split(list(requests), len(self.engines))
        refs = [
            engine.generate.remote(share, _reseeded(sampling, index))
            for index, (engine, share) in enumerate(zip(self.engines, shares, strict=True))
            if share
        ]
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

        if self.sleeps and not self.asleep:
            ray.get([e.sleep.remote() for e in self.engines])
            self.asleep = True
        shares = _split(list(samples), len(self.learners))
        parts = ray.get([lr.update.remote(s) for lr, s in zip(self.learners, shares, strict=True)])
        keys = parts[0].keys()
        return {k: sum(p[k] for p in parts) / len(parts) for k in keys}

    def sync(self) -> dict[str, float]:
        return self.weight_sync.push(self.learners, self.engines)

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
        group = getattr(self, "placement_group", None)
        if group is not None:  # else its reserved CPUs/GPUs block the next run in this Ray
            ray.util.remove_placement_group(group)


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
