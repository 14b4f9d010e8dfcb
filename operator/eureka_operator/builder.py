"""RLJob -> the Kubernetes objects that run it. Pure: no I/O, no clock, no randomness.

`build_objects(job)` returns, in creation order: the ConfigMap holding the spec, the trainer's
ServiceAccount, its Role (patch only this RLJob's status), the RoleBinding and the KubeRay RayJob.
The operator creates exactly these; `eureka render` prints them. Names are deterministic, so a
restarted operator finds the children it made instead of making new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from eureka_trainer.config import API_VERSION, GROUP, KIND, PLURAL, PoolSpec, RLJob, RLJobSpec
from eureka_trainer.config.kube import PodOverrides
from eureka_trainer.config.pools import POOL_RESOURCE_UNITS, pool_resource

Obj = dict[str, Any]

RAY_VERSION = "2.60.0"
SPEC_KEY = "rljob.yaml"
SPEC_DIR = "/etc/eureka"
SPEC_PATH = f"{SPEC_DIR}/{SPEC_KEY}"
RUN_AS_USER = 1000
JOB_LABEL = f"{GROUP}/rljob"
POOL_LABEL = f"{GROUP}/pool"
# Labels copied from the RLJob to the RayJob so Kueue admits the RayJob (Kueue's own integration).
KUEUE_LABELS = ("kueue.x-k8s.io/queue-name", "kueue.x-k8s.io/priority-class")
# KubeRay refuses a RayJob whose name is not a DNS-1035 label of at most 47 characters
# (validation.go ValidateRayJobMetadata; constant.go MaxRayJobNameLength = 53 - 6, so the
# RayCluster it derives, `<rayjob>-<5 chars>`, stays within MaxRayClusterNameLength = 53).
MAX_RAYJOB_NAME = 47
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# The Ray dashboard agent's health endpoint (Ray >= 2.53), as KubeRay >= 1.6 probes it
# (pod.go initLivenessAndReadinessProbe, constant.go RayNodeHealthPath and
# DefaultDashboardAgentListenPort). Set here so that older KubeRay, which execs `wget` in the
# container instead, never needs wget in the trainer image: KubeRay keeps probes a user set.
HEALTH_PATH = "/api/healthz"
DASHBOARD_AGENT_PORT = 52365


def rayjob_name(job_name: str) -> str:
    """The RayJob's name: the RLJob's own when KubeRay accepts it, else a derived one.

    An RLJob name is a DNS-1123 label (up to 63 characters, may start with a digit); KubeRay
    needs a DNS-1035 label of at most 47. Names that do not fit get an `rl-` prefix when they
    start with a digit, are cut to fit, and always end in a hash of the full name, so two RLJobs
    never share a RayJob.
    """
    if len(job_name) <= MAX_RAYJOB_NAME and DNS1035_LABEL.match(job_name):
        return job_name
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:6]
    base = job_name if job_name[:1].isalpha() else f"rl-{job_name}"
    base = base[: MAX_RAYJOB_NAME - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}"


@dataclass(frozen=True)
class Names:
    """Deterministic names of an RLJob's children (same RLJob name -> same names)."""

    job: str

    @property
    def rayjob(self) -> str:
        return rayjob_name(self.job)

    @property
    def configmap(self) -> str:
        return f"{self.job}-rljob"

    @property
    def service_account(self) -> str:
        return f"{self.job}-trainer"

    @property
    def role(self) -> str:
        return f"{self.job}-trainer-status"


def owner_reference(name: str, uid: str) -> Obj:
    """The RLJob as controller-owner: deleting it deletes the child (Kubernetes GC)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_objects(job: RLJob, *, namespace: str | None = None, uid: str | None = None) -> list[Obj]:
    """Every child of `job`: the supporting objects, then the RayJob (owner refs if `uid`)."""
    return [
        *build_support(job, namespace=namespace, uid=uid),
        build_rayjob_for(job, namespace, uid),
    ]


def build_support(job: RLJob, *, namespace: str | None = None, uid: str | None = None) -> list[Obj]:
    """The ConfigMap, ServiceAccount, Role and RoleBinding of `job`."""
    builders: list[Callable[[RLJob, str, Names], Obj]] = [
        build_configmap,
        build_service_account,
        build_role,
        build_role_binding,
    ]
    return [
        _owned(b(job, _ns(job, namespace), Names(job.metadata.name)), job, uid) for b in builders
    ]


def build_rayjob_for(job: RLJob, namespace: str | None = None, uid: str | None = None) -> Obj:
    """The RayJob of `job` alone (the operator creates it first: it is what the user waits for)."""
    return _owned(build_rayjob(job, _ns(job, namespace), Names(job.metadata.name)), job, uid)


def _ns(job: RLJob, namespace: str | None) -> str:
    return namespace or job.metadata.namespace or "default"


def _owned(obj: Obj, job: RLJob, uid: str | None) -> Obj:
    if uid:
        obj["metadata"]["ownerReferences"] = [owner_reference(job.metadata.name, uid)]
    return obj


def _meta(name: str, ns: str, job: RLJob, component: str) -> Obj:
    return {
        "name": name,
        "namespace": ns,
        "labels": {
            "app.kubernetes.io/name": "eureka",
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "eureka-operator",
            JOB_LABEL: job.metadata.name,
        },
    }


def spec_document(job: RLJob, ns: str) -> Obj:
    """The RLJob as the trainer reads it: defaults filled in, no status, no server fields."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": job.metadata.name, "namespace": ns},
        "spec": job.spec.to_yaml_dict(),
    }


# libyaml when available: the pure-Python emitter costs milliseconds per job.
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """No `&id001` anchors: a reader of the ConfigMap sees every value where it applies."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump_spec(doc: Obj) -> str:
    """The ConfigMap's `rljob.yaml` text."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False)


def build_configmap(job: RLJob, ns: str, names: Names) -> Obj:
    text = dump_spec(spec_document(job, ns))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.configmap, ns, job, "spec"),
        "data": {SPEC_KEY: text},
    }


def build_service_account(job: RLJob, ns: str, names: Names) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(names.service_account, ns, job, "trainer"),
        "automountServiceAccountToken": False,
    }


def build_role(job: RLJob, ns: str, names: Names) -> Obj:
    """The trainer may read its own RLJob and patch its status: nothing else, no other job."""
    only_this = [job.metadata.name]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(names.role, ns, job, "trainer"),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL],
                "resourceNames": only_this,
                "verbs": ["get"],
            },
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": only_this,
                "verbs": ["get", "patch"],
            },
        ],
    }


def build_role_binding(job: RLJob, ns: str, names: Names) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(names.role, ns, job, "trainer"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.role},
        "subjects": [
            {"kind": "ServiceAccount", "name": account, "namespace": ns}
            for account in dict.fromkeys(
                [names.service_account, job.spec.resources.head.pod.service_account_name or ""]
            )
            if account
        ],
    }


WORK_ROOT = "/eureka"
"""Where a relative `checkpoint.storage.path` (a local run's folder) lands in the pods: a
Kubernetes mountPath must be absolute."""


def checkpoint_mount_path(job: RLJob) -> str:
    """The checkpoint volume's absolute mount path in every pod."""
    path = job.spec.checkpoint.storage.path.rstrip("/")
    if path.startswith("/"):
        return path
    parts = [p for p in PurePosixPath(path).parts if p not in (".", "..")]
    return "/".join([WORK_ROOT, *parts])


def unmounted_paths(job: RLJob) -> list[tuple[str, str]]:
    """(field, path) of each absolute data or model path no volume of the pods holds.

    Such a path can only work if the trainer image itself contains it; more often a
    `resources.volumes` / `volumeMounts` entry is missing. `eureka validate` warns about these
    (a local run reads the same paths from the laptop, so they are not errors).
    """
    spec = job.spec
    roots = [m.mount_path for m in spec.resources.volume_mounts] + [checkpoint_mount_path(job)]
    wanted = [("model.name", spec.model.name)]
    wanted += [("data.trainFiles", f) for f in spec.data.train_files]
    wanted += [("data.evalFiles", f) for f in spec.data.eval_files]
    if spec.data.image_root:
        wanted.append(("data.imageRoot", spec.data.image_root))
    return [
        (field, path)
        for field, path in wanted
        if path.startswith("/")
        and not any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
    ]


def entrypoint(job: RLJob) -> str:
    """The driver command the RayJob submits (runs on the head pod)."""
    output = f"{checkpoint_mount_path(job)}/{job.metadata.name}"
    return shlex.join(["eureka", "run", SPEC_PATH, "--cluster", "--output", output])


def run_policy_fields(spec: RLJobSpec) -> Obj:
    """runPolicy -> RayJob spec fields (only those KubeRay's RayJob declares)."""
    policy = spec.run_policy
    # shutdownAfterJobFinishes with a TTL (0 by default) deletes the whole Ray cluster, GPUs
    # first of all, and keeps the submitter Job (the driver's log). KubeRay's deletionRules
    # (DeleteWorkers, then DeleteCluster) would need shutdownAfterJobFinishes: false, which
    # KubeRay refuses together with `suspend` (validation.go ValidateRayJobSpec) and Kueue
    # suspends every job it queues: not an option for a job that may be suspended.
    fields: Obj = {
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": policy.ttl_seconds_after_finished,
        "backoffLimit": policy.backoff_limit,
    }
    if policy.active_deadline_seconds is not None:
        fields["activeDeadlineSeconds"] = policy.active_deadline_seconds
    if policy.pre_running_deadline_seconds is not None:
        fields["preRunningDeadlineSeconds"] = policy.pre_running_deadline_seconds
    return fields


def build_rayjob(job: RLJob, ns: str, names: Names) -> Obj:
    meta = _meta(names.rayjob, ns, job, "rayjob")
    meta["labels"].update({k: v for k, v in job.metadata.labels.items() if k in KUEUE_LABELS})
    spec: Obj = {
        "entrypoint": entrypoint(job),
        **run_policy_fields(job.spec),
        "suspend": job.spec.run_policy.suspend,
        "submissionMode": "K8sJobMode",
        "submitterPodTemplate": _submitter_template(job, ns, names),
        "rayClusterSpec": build_cluster_spec(job, ns, names),
    }
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": meta, "spec": spec}


def build_cluster_spec(job: RLJob, ns: str, names: Names) -> Obj:
    res = job.spec.resources
    head_resources = {"cpu": res.head.cpu, "memory": res.head.memory}
    head = {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"},
        "template": _pod_template(job, ns, names, "head", head_resources, head=True),
    }
    return {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": head,
        "workerGroupSpecs": [
            _worker_group(job, ns, names, group, pool) for group, pool in worker_pools(job.spec)
        ],
    }


def worker_pools(spec: RLJobSpec) -> list[tuple[str, PoolSpec]]:
    """(group name, pool) of each Ray worker group: `workers`, or `rollout` and `learner`."""
    res = spec.resources
    named = {"workers": res.workers, "rollout": res.rollout, "learner": res.learner}
    wanted = ("workers",) if res.placement == "colocated" else ("rollout", "learner")
    return [(name, pool) for name in wanted if (pool := named[name]) is not None]


def _worker_group(job: RLJob, ns: str, names: Names, group: str, pool: PoolSpec) -> Obj:
    resources: dict[str, str] = {"cpu": pool.cpu, "memory": pool.memory}
    if pool.gpus:
        resources["nvidia.com/gpu"] = str(pool.gpus)
    template = _pod_template(job, ns, names, group, resources, head=False)
    pod = template["spec"]
    if pool.node_selector:
        pod["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        pod["tolerations"] = [t.to_yaml_dict() for t in pool.tolerations]
    return {
        "groupName": group,
        "replicas": pool.replicas,
        "minReplicas": pool.replicas,
        "maxReplicas": pool.replicas,
        "rayStartParams": worker_start_params(group, pool),
        "template": template,
    }


def worker_start_params(group: str, pool: PoolSpec) -> dict[str, str]:
    """`ray start` parameters of a worker group: its GPUs and its pool's custom Ray resource.

    The pool resource lets the driver pin vLLM engines / learners to their pool. It goes into
    `rayStartParams.resources`, never into the group's `resources` map: KubeRay >= 1.5 refuses a
    group that sets both (validation.go validateRayGroupResources), and KubeRay < 1.5 has no such
    field (its CRD prunes it). The value is single-quoted JSON, the form KubeRay itself writes
    (pod.go updateRayStartParamsResources) and reads back (getResourcesMap trims the quotes).
    """
    resources = json.dumps({pool_resource(group): POOL_RESOURCE_UNITS}, separators=(",", ":"))
    return {"num-gpus": str(pool.gpus), "resources": f"'{resources}'"}


def _pod_template(
    job: RLJob, ns: str, names: Names, group: str, resources: Mapping[str, str], *, head: bool
) -> Obj:
    res = job.spec.resources
    volumes, mounts = _volumes(job, names, head=head)
    container: Obj = {
        "name": "ray-head" if head else "ray-worker",
        "image": res.image,
        "imagePullPolicy": res.image_pull_policy,
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "env": _env(job, ns),
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
        "readinessProbe": health_probe(period=5, failures=10),
        "livenessProbe": health_probe(period=5, failures=120, initial_delay=30),
    }
    if res.env_from:
        container["envFrom"] = [e.to_yaml_dict() for e in res.env_from]
    overrides = res.head.pod if head else _pool_of(job.spec, group).pod
    pod: Obj = {
        "serviceAccountName": overrides.service_account_name or names.service_account,
        # Only the driver (head) talks to the API server; workers get no token at all.
        "automountServiceAccountToken": head,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }
    if res.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in res.image_pull_secrets]
    if overrides.priority_class_name or res.priority_class_name:
        pod["priorityClassName"] = overrides.priority_class_name or res.priority_class_name
    if overrides.runtime_class_name:
        pod["runtimeClassName"] = overrides.runtime_class_name
    if overrides.affinity:
        pod["affinity"] = dict(overrides.affinity)
    return {"metadata": _pod_metadata(job, group, overrides), "spec": pod}


def _pool_of(spec: RLJobSpec, group: str) -> PoolSpec:
    pool = dict(worker_pools(spec))[group]
    return pool


def _pod_metadata(job: RLJob, group: str, overrides: PodOverrides) -> Obj:
    labels = {**overrides.labels, JOB_LABEL: job.metadata.name, POOL_LABEL: group}
    meta: Obj = {"labels": labels}
    if overrides.annotations:
        meta["annotations"] = dict(overrides.annotations)
    return meta


def health_probe(*, period: int, failures: int, initial_delay: int = 10) -> Obj:
    """An HTTP probe of the Ray node's health (no binary needed in the image), with KubeRay's
    default timings (constant.go Default{Readiness,Liveness}Probe*)."""
    return {
        "httpGet": {"path": HEALTH_PATH, "port": DASHBOARD_AGENT_PORT},
        "initialDelaySeconds": initial_delay,
        "timeoutSeconds": 5,
        "periodSeconds": period,
        "successThreshold": 1,
        "failureThreshold": failures,
    }


def _submitter_template(job: RLJob, ns: str, names: Names) -> Obj:
    """The pod KubeRay runs `ray job submit` in (KubeRay fills in the command)."""
    res = job.spec.resources
    container = {
        "name": "ray-job-submitter",
        "image": res.image,
        "imagePullPolicy": res.image_pull_policy,
        "resources": {
            "requests": {"cpu": "200m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": container_security_context(),
    }
    pod: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": names.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
    }
    if res.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in res.image_pull_secrets]
    return {
        "metadata": {"labels": {JOB_LABEL: job.metadata.name, POOL_LABEL: "submitter"}},
        "spec": pod,
    }


def pod_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        # Change volume ownership only when the root's differs: a recursive chown of a dataset or
        # checkpoint volume at every pod start can take minutes.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _env(job: RLJob, ns: str) -> list[Obj]:
    """Job identity for the status sink, and secrets by reference only (never their values)."""
    env: list[Obj] = [
        {"name": "EUREKA_RLJOB_NAME", "value": job.metadata.name},
        {"name": "EUREKA_RLJOB_NAMESPACE", "value": ns},
    ]
    secrets = {
        "HF_TOKEN": job.spec.model.hub_token_secret,
        "WANDB_API_KEY": job.spec.logging.wandb.api_key_secret,
    }
    for var, ref in secrets.items():
        if ref is not None:
            key_ref = {"name": ref.name, "key": ref.key}
            env.append({"name": var, "valueFrom": {"secretKeyRef": key_ref}})
    env += [e.to_yaml_dict() for e in job.spec.resources.env]
    return env


def _volumes(job: RLJob, names: Names, *, head: bool) -> tuple[list[Obj], list[Obj]]:
    storage = job.spec.checkpoint.storage
    checkpoints: Obj = (
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": storage.claim_name}}
        if storage.claim_name
        else {"name": "checkpoints", "emptyDir": {}}
    )
    volumes: list[Obj] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}, checkpoints]
    mounts: list[Obj] = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "checkpoints", "mountPath": checkpoint_mount_path(job)},
    ]
    # The user's volumes (datasets, models, caches) on every Ray pod: the driver reads prompts
    # and images, every worker loads the model.
    volumes += [v.to_yaml_dict() for v in job.spec.resources.volumes]
    mounts += [m.to_yaml_dict() for m in job.spec.resources.volume_mounts]
    if head:
        volumes.append(
            {
                "name": "rljob-spec",
                "configMap": {
                    "name": names.configmap,
                    "items": [{"key": SPEC_KEY, "path": SPEC_KEY}],
                },
            }
        )
        mounts.append({"name": "rljob-spec", "mountPath": SPEC_DIR, "readOnly": True})
    return volumes, mounts


def applied_spec(configmap: Mapping[str, Any]) -> Obj | None:
    """The spec section stored in a ConfigMap this module built (None when unreadable)."""
    text = (configmap.get("data") or {}).get(SPEC_KEY)
    if not isinstance(text, str):
        return None
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    spec = doc.get("spec") if isinstance(doc, dict) else None
    return spec if isinstance(spec, dict) else None
