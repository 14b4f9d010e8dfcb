"""Where each actor of a run lands: placement groups, bundles, GPU shares and pool resources.

One function decides (`reserve`), and both the real run (`topology.Topology`) and
`eureka run --plan` (`driver.plan`) call it, so the plan shows what the run does.

Rules (Ray 2.x semantics, ray/util/placement_group.py and the scheduling docs):

- A Ray actor's resource request must fit inside ONE bundle, and Ray hands an actor that asks
  for a fraction of a GPU the id of some GPU of its bundle. Two learner ranks asking 0.5 GPU
  each from a multi-GPU bundle, or from no bundle at all, may get the same GPU id (Ray packs
  fractions), and NCCL refuses a group with one GPU twice. So every GPU is its own bundle
  (`{"GPU": 1}`), learner rank r is pinned to bundle r, and in `colocated` placement its
  engine shares that bundle (each takes a share of the one GPU).
- A tensor-parallel engine (`tensorParallelSize` t > 1) spans t consecutive bundles of one
  node: the engine actor sits on the first with no GPU of its own, and vLLM's Ray executor
  puts its t workers on those bundles (`VLLM_RAY_BUNDLE_INDICES`, each worker taking
  `VLLM_RAY_PER_WORKER_GPUS` of its GPU; the actor captures its placement group for them).
- A pool's bundles come as one placement group per pod (`STRICT_PACK`: all on one node), so
  an engine's bundles never straddle nodes and rank order follows the pods.
- In a cluster each bundle also asks one unit of the pool's custom resource
  (`config.pools.pool_resource(group)`, declared by the operator on every node of the worker
  group), so rollout engines land on rollout nodes and learners on learner nodes. A Ray cluster
  that does not declare it (`eureka run` on a laptop, a hand-made cluster) is not asked for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.config import RLJobSpec
from eureka_trainer.config.pools import pool_resource

log = logging.getLogger(__name__)

RESOURCE_WAIT_S = 30.0
"""How long to look for the pool resources before taking the cluster for one without them
(KubeRay submits the job once every pod is ready, so their raylets have registered by then)."""

READY_TIMEOUT_S = 900.0
"""How long the driver waits for the pool's pods to offer their GPUs (pods may still start)."""


@dataclass(frozen=True)
class PoolShape:
    """One Ray worker group as the placement sees it: `nodes` pods of `gpus` GPUs and `cpus`
    CPUs each."""

    group: str
    nodes: int
    gpus: int
    cpus: float = float("inf")


@dataclass
class Slot:
    """Where one actor goes. `role`: learner, engine or hybrid (both in one process);
    `group`/`bundle`: placement group index and bundle index in it; `bundles`: every bundle the
    actor uses (a tensor-parallel engine's workers); `options`: the `ray.remote` options."""

    role: str
    rank: int
    pool: str
    group: int
    bundle: int
    bundles: tuple[int, ...]
    num_gpus: float
    num_cpus: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    resource: str | None = None
    """The pool resource its bundles ask for (None where the cluster declares none)."""

    def describe(self) -> dict[str, Any]:
        """The slot without Ray objects (what `--plan` prints next to the actor's report)."""
        return {
            "role": self.role,
            "rank": self.rank,
            "pool": self.pool,
            "placementGroup": self.group,
            "bundles": list(self.bundles),
            "gpuShare": self.num_gpus,
            "poolResource": self.resource,
        }


@dataclass
class Reservation:
    """The placement groups of a run and the slot of every actor (`release()` frees them)."""

    groups: list[Any]
    learners: list[Slot]
    engines: list[Slot]

    def release(self) -> None:
        import ray

        for group in self.groups:
            ray.util.remove_placement_group(group)
        self.groups = []


def pool_shapes(spec: RLJobSpec, *, cluster: bool) -> tuple[PoolShape, PoolShape]:
    """(rollout pool, learner pool); the same pool twice in `colocated` placement. Locally
    there is one node with no GPUs Ray may give out (the local layout asks for none)."""
    res = spec.resources
    if not cluster:
        local = PoolShape("workers", 1, 0)
        return local, local
    named = {"workers": res.workers, "rollout": res.rollout, "learner": res.learner}
    shapes = {
        group: PoolShape(group, pool.replicas, pool.gpus, cpu_quantity(pool.cpu))
        for group, pool in named.items()
        if pool is not None
    }
    if res.placement == "colocated":
        return shapes["workers"], shapes["workers"]
    return shapes["rollout"], shapes["learner"]


def cpu_quantity(quantity: str) -> float:
    """CPUs of a Kubernetes quantity ("64" -> 64.0, "500m" -> 0.5)."""
    text = quantity.strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _actor_cpus(pool: PoolShape, wanted: float, per_bundle: int, bundles: int) -> float:
    """CPUs per actor: `wanted`, or less when the pod's CPUs cannot hold `per_bundle` actors
    on each of its `bundles` bundles (a placement group asking more would never be placed)."""
    return min(wanted, pool.cpus / max(1, per_bundle * bundles))


def plan_slots(
    spec: RLJobSpec, layout: Any, *, cluster: bool
) -> tuple[dict[str, list[list[dict[str, float]]]], list[Slot], list[Slot]]:
    """The bundles of every pool's placement groups, and the learner and engine slots.

    Pure (no Ray): `reserve` turns it into placement groups and scheduling options."""
    rollout, learner = pool_shapes(spec, cluster=cluster)
    tp = spec.rollout.tensor_parallel_size if rollout.gpus else 1
    colocated = spec.resources.placement == "colocated"
    groups: dict[str, list[list[dict[str, float]]]] = {}
    cpus: dict[str, float] = {}  # CPUs per actor, by pool

    def bundles_of(pool: PoolShape, per_bundle: int, count: int) -> None:
        if pool.group in groups:
            return
        # GPU pods: a bundle per GPU; CPU pods: a bundle per actor (pair), spread over the pods.
        bundles = pool.gpus or -(-count // pool.nodes)
        cpus[pool.group] = _actor_cpus(pool, layout.cpus_per_actor, per_bundle, bundles)
        cpus_per_bundle = per_bundle * cpus[pool.group]
        if pool.gpus:  # one placement group per pod, one bundle per GPU
            bundle = {"GPU": 1.0, "CPU": cpus_per_bundle}
            groups[pool.group] = [
                [dict(bundle) for _ in range(pool.gpus)] for _ in range(pool.nodes)
            ]
        else:  # CPU pods: one placement group, one bundle per actor (or per actor pair)
            groups[pool.group] = [[{"CPU": cpus_per_bundle} for _ in range(count)]]

    def where(pool: PoolShape, index: int, width: int = 1) -> tuple[int, tuple[int, ...]]:
        """(placement group, bundles) of the index-th actor of `width` GPUs in `pool`."""
        if not pool.gpus:
            return 0, (index,)
        per_node = pool.gpus // width
        first = (index % per_node) * width
        return index // per_node, tuple(range(first, first + width))

    learners: list[Slot] = []
    engines: list[Slot] = []
    if layout.hybrid:  # one actor per rank: a learner and an engine in one process
        share = layout.learner_gpus + layout.engine_gpus
        bundles_of(learner, 1, layout.learners)
        for rank in range(layout.learners):
            group, bundles = where(learner, rank)
            learners.append(Slot("hybrid", rank, learner.group, group, bundles[0], bundles, share))
        return groups, _with_cpus(learners, cpus), engines

    if colocated or rollout.group == learner.group:
        # An engine and a rank share every bundle (every GPU), so it has CPUs for two.
        bundles_of(learner, 2, max(layout.learners, layout.engines))
    else:
        bundles_of(learner, 1, layout.learners)
        bundles_of(rollout, 1, layout.engines)
    for rank in range(layout.learners):
        group, bundles = where(learner, rank)
        learners.append(
            Slot("learner", rank, learner.group, group, bundles[0], bundles, layout.learner_gpus)
        )
    for index in range(layout.engines):
        group, bundles = where(rollout, index, tp)
        per_gpu = layout.engine_gpus / tp
        slot = Slot("engine", index, rollout.group, group, bundles[0], bundles, per_gpu)
        if tp > 1:
            # The actor holds no GPU; vLLM's Ray executor puts one worker on each bundle.
            slot.num_gpus = 0.0
            slot.env = {
                "VLLM_RAY_BUNDLE_INDICES": ",".join(str(b) for b in bundles),
                "VLLM_RAY_PER_WORKER_GPUS": str(per_gpu),
            }
        engines.append(slot)
    return groups, _with_cpus(learners, cpus), _with_cpus(engines, cpus)


def _with_cpus(slots: list[Slot], cpus: dict[str, float]) -> list[Slot]:
    for slot in slots:
        slot.num_cpus = cpus[slot.pool]
    return slots


def reserve(
    spec: RLJobSpec,
    layout: Any,
    *,
    cluster: bool,
    timeout_s: float = READY_TIMEOUT_S,
) -> Reservation:
    """Create the placement groups (waiting until Ray has placed them) and fill in each slot's
    `ray.remote` options. Every actor of a run is started with its slot's options."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle_sets, learners, engines = plan_slots(spec, layout, cluster=cluster)
    wanted = {pool_resource(pool) for pool in bundle_sets}
    available = _declared(ray, wanted, RESOURCE_WAIT_S) if cluster else set()
    handles: dict[str, list[Any]] = {}
    created: list[Any] = []
    for pool, per_node in bundle_sets.items():
        resource = pool_resource(pool)
        if cluster and resource not in available:
            log.warning(
                "the Ray cluster declares no %r resource: the %s pool's actors go wherever "
                "their GPUs are free (the operator's RayJob declares it on every pool node)",
                resource,
                pool,
            )
        for bundles in per_node:
            if resource in available:
                bundles = [{**b, resource: 1.0} for b in bundles]
            gpus = any("GPU" in b for b in bundles)
            group = placement_group(bundles, strategy="STRICT_PACK" if gpus else "PACK")
            handles.setdefault(pool, []).append(group)
            created.append(group)
    for slot in [*learners, *engines]:
        slot.resource = pool_resource(slot.pool) if pool_resource(slot.pool) in available else None
    reservation = Reservation(created, learners, engines)
    try:
        _wait_ready(ray, handles, bundle_sets, timeout_s)
    except Exception:
        reservation.release()
        raise
    for slot in [*learners, *engines]:
        slot.options = {
            "num_cpus": slot.num_cpus,
            "num_gpus": slot.num_gpus,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=handles[slot.pool][slot.group],
                placement_group_bundle_index=slot.bundle,
                # vLLM's tensor-parallel workers must join this actor's placement group.
                placement_group_capture_child_tasks=bool(slot.env),
            ),
        }
        if slot.env:
            slot.options["runtime_env"] = {"env_vars": dict(slot.env)}
    return reservation


def _declared(ray: Any, wanted: set[str], wait_s: float) -> set[str]:
    """The names in `wanted` the cluster declares, waiting up to `wait_s` for all of them."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        found = wanted & set(ray.cluster_resources())
        if found == wanted or time.monotonic() >= deadline:
            return found
        time.sleep(1.0)


def _wait_ready(
    ray: Any,
    handles: dict[str, list[Any]],
    bundle_sets: dict[str, list[list[dict[str, float]]]],
    timeout_s: float,
) -> None:
    """Wait for every placement group; name the pool and what it asked for when one is not
    placed in time (a pod short of GPUs or CPUs, or a pool resource no node declares)."""
    for pool, groups in handles.items():
        for index, group in enumerate(groups):
            ready, _ = ray.wait([group.ready()], timeout=timeout_s)
            if not ready:
                raise RuntimeError(
                    f"placement: pool {pool!r} pod {index}: Ray could not place "
                    f"{len(bundle_sets[pool][index])} bundles of "
                    f"{bundle_sets[pool][index][0]} on one node within {timeout_s:.0f} s "
                    f"(cluster resources: {ray.cluster_resources()})"
                )
