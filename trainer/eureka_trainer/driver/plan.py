"""`eureka run RLJOB --plan`: where every actor of the run would land, without training.

A simulated Ray cluster of the spec's size (`ray.cluster_utils.Cluster`: one raylet per pod,
GPUs and the pools' custom resources declared as the operator's RayJob declares them; no GPU
needed), the run's own placement (`driver.placement.reserve`, the code `Topology` calls), and a
tiny probe actor in each slot reporting the node and the GPU ids Ray gave it. Printed as a table
or JSON; the cluster is torn down afterwards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from eureka_trainer.config import RLJobSpec
from eureka_trainer.config.pools import POOL_RESOURCE_UNITS, pool_resource

PLAN_TIMEOUT_S = 120.0
"""How long the simulated cluster may take to place the groups (all its resources are there)."""


class Probe:
    """Stands in for an actor of the run: it only says where it is."""

    def placement(self) -> dict[str, Any]:
        from eureka_trainer.driver.workers import actor_placement

        return actor_placement()


def _cpus(quantity: str) -> int:
    """Whole CPUs Ray sees in a pod of this CPU quantity (at least 1)."""
    from eureka_trainer.driver.placement import cpu_quantity

    return max(1, int(cpu_quantity(quantity)))


def _pools(spec: RLJobSpec) -> list[tuple[str, Any]]:
    """(Ray worker group, pool) as the operator renders them: `workers`, or rollout + learner."""
    res = spec.resources
    named = [("workers", res.workers)] if res.placement == "colocated" else []
    named = named or [("rollout", res.rollout), ("learner", res.learner)]
    return [(group, pool) for group, pool in named if pool is not None]


def simulated_cluster(spec: RLJobSpec) -> tuple[Any, dict[str, str]]:
    """A local Ray cluster shaped like the spec's RayCluster; (cluster, node id -> pod name).

    Head: the driver's pod, no GPUs and no pool resource (as the operator renders it). Each
    worker pod: its pool's CPUs and GPUs and `POOL_RESOURCE_UNITS` of its pool resource."""
    from ray.cluster_utils import Cluster

    # Ray starts no idle workers up front; the probes are the only processes besides raylets.
    os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
    cluster: Any = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": _cpus(spec.resources.head.cpu), "num_gpus": 0},
    )
    names = {cluster.head_node.node_id: "head"}
    try:
        for group, pool in _pools(spec):
            for replica in range(pool.replicas):
                node = cluster.add_node(
                    num_cpus=_cpus(pool.cpu),
                    num_gpus=pool.gpus,
                    resources={pool_resource(group): POOL_RESOURCE_UNITS},
                )
                names[node.node_id] = f"{group}-{replica}"
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster, names


def plan(spec: RLJobSpec) -> list[dict[str, Any]]:
    """One row per actor: role, rank, pool, node (pod), GPU ids, bundles; the run's placement
    on a simulated cluster of the spec's size."""
    import ray

    from eureka_trainer.driver.placement import reserve
    from eureka_trainer.driver.topology import plan_layout

    if ray.is_initialized():
        raise RuntimeError("--plan starts its own simulated Ray cluster: Ray is already running")
    cluster, names = simulated_cluster(spec)
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        layout = plan_layout(spec, cluster=True, local_cpus=os.cpu_count() or 2)
        reservation = reserve(spec, layout, cluster=True, timeout_s=PLAN_TIMEOUT_S)
        try:
            return _probe(ray, reservation, names)
        finally:
            reservation.release()
    finally:
        ray.shutdown()
        cluster.shutdown()


def _probe(ray: Any, reservation: Any, names: dict[str, str]) -> list[dict[str, Any]]:
    """Start a probe in every slot (all at once, so they hold their resources together)."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    probe = ray.remote(Probe)
    slots = [*reservation.learners, *reservation.engines]
    actors = [probe.options(**s.options).remote() for s in slots]
    # A tensor-parallel engine holds no GPU itself: vLLM's Ray executor puts one worker on each
    # of its bundles with VLLM_RAY_PER_WORKER_GPUS of that GPU; probe those the same way.
    workers: dict[int, list[Any]] = {}
    for index, slot in enumerate(slots):
        if not slot.env:
            continue
        share = float(slot.env["VLLM_RAY_PER_WORKER_GPUS"])
        group = slot.options["scheduling_strategy"].placement_group
        workers[index] = [
            probe.options(
                num_cpus=0,
                num_gpus=share,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=bundle
                ),
            ).remote()
            for bundle in slot.bundles
        ]
    reports = ray.get([a.placement.remote() for a in actors])
    rows = []
    for index, (slot, report) in enumerate(zip(slots, reports, strict=True)):
        gpus = list(report["gpus"])
        if index in workers:
            for worker in ray.get([w.placement.remote() for w in workers[index]]):
                gpus.extend(worker["gpus"])
        rows.append(
            {**slot.describe(), "node": names.get(report["node"], report["node"]), "gpus": gpus}
        )
    for actor in [*actors, *(w for ws in workers.values() for w in ws)]:
        ray.kill(actor)
    return rows


def doubled_gpus(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Problems: a GPU (node, id) given to two learner ranks, or to two engines."""
    problems = []
    for roles in (("learner", "hybrid"), ("engine", "hybrid")):
        owner: dict[tuple[str, str], str] = {}
        for row in rows:
            if row["role"] not in roles:
                continue
            for gpu in row["gpus"]:
                key = (row["node"], gpu)
                who = f"{row['role']} {row['rank']}"
                if key in owner:
                    problems.append(f"GPU {gpu} of {row['node']}: {owner[key]} and {who}")
                owner[key] = who
    return problems


def render(rows: Sequence[dict[str, Any]], output: str) -> str:
    """The plan as JSON (`-o json`) or a table."""
    if output == "json":
        return json.dumps({"actors": list(rows), "doubledGpus": doubled_gpus(rows)}, indent=2)
    header = ("ROLE", "RANK", "POOL", "NODE", "GPUS", "SHARE", "BUNDLES")
    lines = [header] + [
        (
            r["role"],
            str(r["rank"]),
            r["pool"],
            r["node"],
            ",".join(r["gpus"]) or "-",
            f"{r['gpuShare']:g}",
            f"{r['placementGroup']}:{','.join(str(b) for b in r['bundles'])}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    problems = doubled_gpus(rows)
    return text + ("\n" + "\n".join(f"DOUBLED: {p}" for p in problems) if problems else "")
