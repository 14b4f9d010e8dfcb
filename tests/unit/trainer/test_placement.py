"""The placement's slots (pure: no Ray) and the doubled-GPU check `--plan` applies.

Rules, from Ray's placement-group semantics (ray/util/placement_group.py; an actor's request
must fit in ONE bundle, and fractional GPU requests are packed onto the same GPU id): every GPU
is its own bundle, learner rank r owns bundle r of its pod, and a colocated engine shares its
rank's bundle; a tensor-parallel engine spans consecutive bundles of one pod."""

from __future__ import annotations

from typing import Any

from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.placement import plan_slots
from eureka_trainer.driver.plan import doubled_gpus
from eureka_trainer.driver.topology import plan_layout


def _spec(tp: int = 1, backend: str = "vllm", **resources: Any) -> RLJobSpec:
    return RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["x.jsonl"]},
            "algorithm": {"trainBatchSize": 64, "rolloutBatchSize": 64},
            "rollout": {"backend": backend, "tensorParallelSize": tp},
            "resources": resources or {"workers": {"replicas": 2, "gpus": 4, "cpu": "16"}},
        }
    )


def _slots(spec: RLJobSpec, cluster: bool = True) -> tuple[Any, Any, Any]:
    return plan_slots(spec, plan_layout(spec, cluster=cluster, local_cpus=2), cluster=cluster)


def test_colocated_one_bundle_per_gpu_each_rank_and_engine_pinned_to_its_own() -> None:
    groups, learners, engines = _slots(_spec())
    assert groups == {"workers": [[{"GPU": 1.0, "CPU": 2.0}] * 4] * 2}  # a group per pod
    where = [(s.group, s.bundle) for s in learners]
    assert where == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert [(s.group, s.bundle) for s in engines] == where  # each engine on its rank's GPU
    assert all(s.num_gpus == 0.5 and s.num_cpus == 1.0 for s in [*learners, *engines])


def test_bundles_fit_the_pods_cpus() -> None:
    """A placement group asking more CPUs than a pod has is never placed (the run would wait
    forever): with 4 CPUs for 4 GPUs and two actors per GPU, each actor gets half a CPU."""
    groups, learners, engines = _slots(_spec(workers={"replicas": 1, "gpus": 4, "cpu": "4"}))
    assert sum(b["CPU"] for b in groups["workers"][0]) == 4.0
    assert {s.num_cpus for s in [*learners, *engines]} == {0.5}
    spec = _spec(workers={"replicas": 2, "gpus": 0, "cpu": "500m"}, backend="hf")
    groups, learners, _ = _slots(spec)
    assert groups == {"workers": [[{"CPU": 0.5}, {"CPU": 0.5}]]}
    assert [s.num_cpus for s in learners] == [0.5, 0.5]


def test_tensor_parallel_engines_span_consecutive_bundles_of_one_pod() -> None:
    _, learners, engines = _slots(_spec(tp=2))
    assert len(learners) == 8 and len(engines) == 4
    assert [(s.group, s.bundles) for s in engines] == [
        (0, (0, 1)),
        (0, (2, 3)),
        (1, (0, 1)),
        (1, (2, 3)),
    ]
    first = engines[1]
    assert first.num_gpus == 0.0  # vLLM's workers hold the GPUs, not the engine actor
    assert first.env == {"VLLM_RAY_BUNDLE_INDICES": "2,3", "VLLM_RAY_PER_WORKER_GPUS": "0.5"}


def test_split_pools_get_their_own_groups_and_whole_gpus() -> None:
    spec = _spec(
        placement="split",
        rollout={"replicas": 1, "gpus": 4, "cpu": "8"},
        learner={"replicas": 2, "gpus": 2, "cpu": "8"},
    )
    groups, learners, engines = _slots(spec)
    assert set(groups) == {"rollout", "learner"}
    assert len(groups["learner"]) == 2 and len(groups["learner"][0]) == 2
    assert {s.pool for s in learners} == {"learner"} and {s.pool for s in engines} == {"rollout"}
    assert [(s.group, s.bundle) for s in learners] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(s.num_gpus == 1.0 for s in [*learners, *engines])


def test_hybrid_actors_own_a_whole_gpu_and_local_runs_one_cpu_bundle() -> None:
    spec = _spec(backend="hf", workers={"replicas": 1, "gpus": 2, "cpu": "8"})
    groups, learners, engines = _slots(spec)
    assert engines == [] and [s.role for s in learners] == ["hybrid", "hybrid"]
    assert [(s.bundle, s.num_gpus) for s in learners] == [(0, 1.0), (1, 1.0)]
    groups, learners, engines = _slots(_spec(), cluster=False)
    assert groups == {"workers": [[{"CPU": 2.0}]]}
    assert (learners[0].bundle, engines[0].bundle, engines[0].num_gpus) == (0, 0, 0.0)


def test_doubled_gpus_names_two_ranks_or_two_engines_on_one_gpu() -> None:
    def row(role: str, rank: int, node: str, *gpus: str) -> dict[str, Any]:
        return {"role": role, "rank": rank, "node": node, "gpus": list(gpus)}

    fine = [
        row("learner", 0, "w-0", "0"),
        row("learner", 1, "w-0", "1"),
        row("learner", 2, "w-1", "0"),  # same id, other node
        row("engine", 0, "w-0", "0"),  # an engine beside its rank is the colocated layout
        row("engine", 1, "w-0", "1"),
    ]
    assert doubled_gpus(fine) == []
    doubled = [*fine, row("learner", 3, "w-0", "1"), row("engine", 2, "w-0", "0", "1")]
    assert doubled_gpus(doubled) == [
        "GPU 1 of w-0: learner 1 and learner 3",
        "GPU 0 of w-0: engine 0 and engine 2",
        "GPU 1 of w-0: engine 1 and engine 2",
    ]


def test_pool_resources_are_asked_only_where_the_cluster_declares_them() -> None:
    from types import SimpleNamespace

    from eureka_trainer.driver.placement import _declared

    kuberay = SimpleNamespace(cluster_resources=lambda: {"CPU": 8.0, "eureka_rollout": 1000.0})
    wanted = {"eureka_rollout", "eureka_learner"}
    assert _declared(kuberay, wanted, wait_s=0) == {"eureka_rollout"}
    laptop = SimpleNamespace(cluster_resources=lambda: {"CPU": 2.0})
    assert _declared(laptop, wanted, wait_s=0) == set()
