"""The pure builder: RLJob -> ConfigMap, ServiceAccount, Role, RoleBinding, RayJob."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from eureka_operator.builder import JOB_LABEL, SPEC_PATH, applied_spec, build_objects, worker_pools
from eureka_trainer.config import RLJob, load_rljob
from eureka_trainer.config.pools import POOL_RESOURCE_UNITS, pool_resource

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "manifests" / "examples"
KUBERAY = REPO / "tests" / "kuberay" / "data" / "ray.io_rayjobs.yaml"
K8S = "1.30.0"


@functools.cache
def rayjob_validator() -> jsonschema.Draft4Validator:
    crd = yaml.load(KUBERAY.read_text(), Loader=yaml.CSafeLoader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft4Validator(v1["schema"]["openAPIV3Schema"])


def objects(job: RLJob, uid: str | None = "uid-1") -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in build_objects(job, uid=uid)}


def pod_templates(rayjob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = rayjob["spec"]
    templates = {"head": spec["rayClusterSpec"]["headGroupSpec"]["template"]}
    templates["submitter"] = spec["submitterPodTemplate"]
    for group in spec["rayClusterSpec"]["workerGroupSpecs"]:
        templates[group["groupName"]] = group["template"]
    return templates


def small(**spec: Any) -> RLJob:
    base: dict[str, Any] = {
        "model": {"name": "m"},
        "data": {"trainFiles": ["t.jsonl"]},
        "rollout": {"backend": "hf"},
    }
    return RLJob.model_validate({"metadata": {"name": "j", "namespace": "ns"}, "spec": base | spec})


@pytest.mark.parametrize("example", ["rljob.yaml", "rljob-qwen.yaml"])
def test_examples_build_valid_kubernetes_and_kuberay_objects(example: str) -> None:
    job = load_rljob(EXAMPLES / example)
    built = objects(job)
    rayjob_validator().validate(built["RayJob"])
    for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding"):
        kubernetes_validate.validate(built[kind], K8S, strict=True)
    for name, template in pod_templates(built["RayJob"]).items():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": template["metadata"],
            "spec": template["spec"],
        }
        kubernetes_validate.validate(pod, K8S, strict=True)
        assert template["metadata"]["labels"][JOB_LABEL] == job.metadata.name, name


def test_split_placement_has_gpu_pools_with_their_scheduling() -> None:
    job = load_rljob(EXAMPLES / "rljob.yaml")
    groups = {
        g["groupName"]: g
        for g in objects(job)["RayJob"]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    }
    assert set(groups) == {"rollout", "learner"}
    for name, pool in (
        ("rollout", job.spec.resources.rollout),
        ("learner", job.spec.resources.learner),
    ):
        assert pool is not None
        group = groups[name]
        pod = group["template"]["spec"]
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == str(pool.gpus)
        assert pod["nodeSelector"] == pool.node_selector
        assert pod["tolerations"] == [t.to_yaml_dict() for t in pool.tolerations]
        assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == pool.replicas
        assert group["rayStartParams"]["num-gpus"] == str(pool.gpus)


def test_colocated_placement_has_one_workers_group() -> None:
    job = load_rljob(EXAMPLES / "rljob-qwen.yaml")
    assert [name for name, _ in worker_pools(job.spec)] == ["workers"]
    groups = objects(job)["RayJob"]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["workers"]


def test_head_runs_the_driver_with_the_spec_mounted() -> None:
    job = small(checkpoint={"storage": {"claimName": "ckpt", "path": "/ckpt"}})
    built = objects(job)
    rayjob = built["RayJob"]
    assert rayjob["spec"]["entrypoint"] == f"eureka run {SPEC_PATH} --cluster --output /ckpt/j"
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    assert mounts == {"/dev/shm": "dshm", "/ckpt": "checkpoints", "/etc/eureka": "rljob-spec"}
    volumes = {v["name"]: v for v in head["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory"}
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {"claimName": "ckpt"}
    assert volumes["rljob-spec"]["configMap"]["name"] == built["ConfigMap"]["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in head["containers"][0]["env"]}
    assert env["EUREKA_RLJOB_NAME"] == "j" and env["EUREKA_RLJOB_NAMESPACE"] == "ns"
    # The ConfigMap holds the normalised spec the trainer reads.
    assert applied_spec(built["ConfigMap"]) == job.spec.to_yaml_dict()


def test_secrets_only_by_reference() -> None:
    job = small(
        model={"name": "m", "hubTokenSecret": {"name": "hf", "key": "token"}},
        logging={"wandb": {"enabled": True, "apiKeySecret": {"name": "wb", "key": "k"}}},
    )
    for template in pod_templates(objects(job)["RayJob"]).values():
        for container in template["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            if not env:
                continue
            assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
            assert env["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "wb", "key": "k"}
            assert "value" not in env["HF_TOKEN"] and "value" not in env["WANDB_API_KEY"]


def test_pods_are_non_root_and_only_the_head_gets_an_api_token() -> None:
    for name, template in pod_templates(objects(small())["RayJob"]).items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is (name == "head")
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == [
                "ALL"
            ]


def test_trainer_role_patches_only_its_own_status() -> None:
    built = objects(small())
    rules = built["Role"]["rules"]
    assert all(rule["resourceNames"] == ["j"] for rule in rules)
    assert {v for rule in rules for v in rule["verbs"]} == {"get", "patch"}
    patchable = [r for r in rules if "patch" in r["verbs"]]
    assert [r["resources"] for r in patchable] == [["rljobs/status"]]
    binding = built["RoleBinding"]
    assert binding["subjects"][0]["name"] == built["ServiceAccount"]["metadata"]["name"]
    assert binding["roleRef"]["name"] == built["Role"]["metadata"]["name"]


def test_run_policy_maps_to_rayjob_fields() -> None:
    job = small(
        runPolicy={
            "suspend": True,
            "backoffLimit": 3,
            "activeDeadlineSeconds": 600,
            "preRunningDeadlineSeconds": 120,
            "ttlSecondsAfterFinished": 30,
        }
    )
    spec = objects(job)["RayJob"]["spec"]
    assert spec["suspend"] is True and spec["backoffLimit"] == 3
    assert spec["activeDeadlineSeconds"] == 600 and spec["preRunningDeadlineSeconds"] == 120
    assert spec["ttlSecondsAfterFinished"] == 30 and spec["shutdownAfterJobFinishes"] is True
    assert "managedBy" not in spec
    defaults = objects(small())["RayJob"]["spec"]
    assert "activeDeadlineSeconds" not in defaults and defaults["suspend"] is False


def test_names_are_deterministic_and_owned() -> None:
    job = small()
    assert build_objects(job, uid="u") == build_objects(job, uid="u")
    for obj in build_objects(job, uid="u"):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "eureka.dev/v1alpha1",
            "kind": "RLJob",
            "name": "j",
            "uid": "u",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    assert all("ownerReferences" not in o["metadata"] for o in build_objects(job))


def test_kueue_labels_are_propagated_to_the_rayjob() -> None:
    job = RLJob.model_validate(
        {
            "metadata": {"name": "j", "labels": {"kueue.x-k8s.io/queue-name": "gpus", "team": "a"}},
            "spec": {
                "model": {"name": "m"},
                "data": {"trainFiles": ["t"]},
                "rollout": {"backend": "hf"},
            },
        }
    )
    labels = objects(job)["RayJob"]["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "gpus" and "team" not in labels


DATA = {
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "ds", "readOnly": True}}],
    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
}


@pytest.mark.parametrize("placement", ["colocated", "split"])
def test_a_dataset_pvc_is_mounted_on_every_ray_pod(placement: str) -> None:
    pools = (
        {"workers": {"replicas": 2}}
        if placement == "colocated"
        else {"rollout": {"replicas": 1}, "learner": {"replicas": 2}}
    )
    job = small(resources={"placement": placement, **pools, **DATA})
    templates = pod_templates(objects(job)["RayJob"])
    ray_pods = {k: v for k, v in templates.items() if k != "submitter"}
    assert set(ray_pods) == {"head", *pools}
    for name, template in ray_pods.items():
        pod = template["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "ds", "readOnly": True}
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/data"] == {"name": "data", "mountPath": "/data", "readOnly": True}, name
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": pod},
            K8S,
            strict=True,
        )


def test_env_and_env_from_reach_every_ray_container() -> None:
    job = small(
        resources={
            "env": [{"name": "HF_HOME", "value": "/cache/hf"}],
            "envFrom": [{"configMapRef": {"name": "proxy"}}, {"secretRef": {"name": "s3"}}],
        }
    )
    for name, template in pod_templates(objects(job)["RayJob"]).items():
        if name == "submitter":
            continue
        container = template["spec"]["containers"][0]
        assert {"name": "HF_HOME", "value": "/cache/hf"} in container["env"]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "proxy"}},
            {"secretRef": {"name": "s3"}},
        ]


def test_per_group_pod_overrides() -> None:
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    job = small(
        resources={
            "priorityClassName": "batch",
            "head": {"pod": {"serviceAccountName": "driver", "annotations": {"a.io/x": "1"}}},
            "workers": {
                "pod": {
                    "labels": {"team": "vision"},
                    "affinity": affinity,
                    "runtimeClassName": "nvidia",
                    "priorityClassName": "gpu-high",
                }
            },
        }
    )
    built = objects(job)
    templates = pod_templates(built["RayJob"])
    head, workers = templates["head"], templates["workers"]
    assert head["spec"]["serviceAccountName"] == "driver"
    assert head["metadata"]["annotations"] == {"a.io/x": "1"}
    assert head["spec"]["priorityClassName"] == "batch"
    assert workers["spec"]["serviceAccountName"] == "j-trainer"
    assert workers["metadata"]["labels"]["team"] == "vision"
    assert workers["metadata"]["labels"][JOB_LABEL] == "j"  # the operator's labels stay
    assert workers["spec"]["affinity"] == affinity
    assert workers["spec"]["runtimeClassName"] == "nvidia"
    assert workers["spec"]["priorityClassName"] == "gpu-high"
    # The head's own account may still report status: it is bound to the job's Role too.
    subjects = {s["name"] for s in built["RoleBinding"]["subjects"]}
    assert subjects == {"j-trainer", "driver"}


def test_pool_resources_are_declared_the_way_kuberay_accepts() -> None:
    job = load_rljob(EXAMPLES / "rljob.yaml")
    groups = objects(job)["RayJob"]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    for group in groups:
        assert "resources" not in group  # validateRayGroupResources: not with rayStartParams
        text = group["rayStartParams"]["resources"]
        assert text.startswith("'") and text.endswith("'")
        declared = json.loads(text.strip("'"))
        assert declared == {pool_resource(group["groupName"]): POOL_RESOURCE_UNITS}


def test_probes_need_no_binary_in_the_image() -> None:
    for name, template in pod_templates(objects(small())["RayJob"]).items():
        if name == "submitter":
            continue
        container = template["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/api/healthz", "port": 52365}
            assert "exec" not in container[probe]
        assert template["spec"]["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"


def test_a_relative_checkpoint_path_is_mounted_at_an_absolute_one() -> None:
    job = small(checkpoint={"storage": {"path": "checkpoints"}})
    rayjob = objects(job)["RayJob"]
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    assert mounts["checkpoints"] == "/eureka/checkpoints"
    assert rayjob["spec"]["entrypoint"].endswith("--output /eureka/checkpoints/j")
    from eureka_operator.builder import checkpoint_mount_path

    for relative, absolute in [
        ("./ck", "/eureka/ck"),
        (".ck/x", "/eureka/.ck/x"),
        ("../a", "/eureka/a"),
    ]:
        job = small(checkpoint={"storage": {"path": relative}})
        assert checkpoint_mount_path(job) == absolute


def test_a_name_kuberay_refuses_is_mapped_for_the_rayjob_only() -> None:
    job = RLJob.model_validate(
        {"metadata": {"name": "7b-grpo"}, "spec": small().spec.to_yaml_dict()}
    )
    built = objects(job)
    name = built["RayJob"]["metadata"]["name"]
    assert name != "7b-grpo" and name.startswith("rl-7b-grpo-") and len(name) <= 47
    assert built["RayJob"]["metadata"]["labels"][JOB_LABEL] == "7b-grpo"
    assert built["ConfigMap"]["metadata"]["name"] == "7b-grpo-rljob"


def test_gpus_are_freed_when_the_job_ends_by_default() -> None:
    spec = objects(small())["RayJob"]["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 0


def test_paths_no_volume_holds_are_named() -> None:
    from eureka_operator.builder import unmounted_paths

    bare = small(data={"trainFiles": ["/data/t.jsonl"], "imageRoot": "/data/img"})
    assert unmounted_paths(bare) == [
        ("data.trainFiles", "/data/t.jsonl"),
        ("data.imageRoot", "/data/img"),
    ]
    mounted = small(
        data={"trainFiles": ["/data/t.jsonl"], "evalFiles": ["/checkpoints/e.jsonl"]},
        model={"name": "/models/qwen"},
        resources={
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                {"name": "models", "persistentVolumeClaim": {"claimName": "m"}},
            ],
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "models", "mountPath": "/models"},
            ],
        },
    )
    assert unmounted_paths(mounted) == []  # /checkpoints: the checkpoint volume
    assert unmounted_paths(small(data={"trainFiles": ["/database/t.jsonl"]}, resources=DATA)) == [
        ("data.trainFiles", "/database/t.jsonl")  # a prefix of the name is not a parent folder
    ]
    for example in EXAMPLES.glob("*.yaml"):
        assert unmounted_paths(load_rljob(example)) == [], example.name
