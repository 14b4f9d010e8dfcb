"""KubeRay's admission rules for a RayJob, written out in Python for the tests.

The API emulator only checks a RayJob against KubeRay's CRD schema; KubeRay's controller (and its
optional webhook, pkg/webhooks/v1/rayjob_webhook.go) then refuses a RayJob by the rules of
`ray-operator/controllers/ray/utils/validation.go` (v1.7.0, called from rayjob_controller.go's
validation step; a refused RayJob ends in `jobDeploymentStatus: ValidationFailed`). Each rule
below names the KubeRay function it comes from. Only the rules that can apply to what the Eureka
operator builds are here (no ClusterSelector, no RayService, no network policy, no TLS, no history
server, autoscaling off), plus the Kubernetes pod rules KubeRay's pods must then pass
(apimachinery/pkg/apis/core/validation: ValidateVolumes, validateVolumeMounts), and the parsing
of `rayStartParams.resources` (common/pod.go getResourcesMap), which KubeRay only logs when it
fails, silently dropping the custom resources.

`rayjob_problems(rayjob)` returns the reasons KubeRay would refuse or mangle the RayJob: an empty
list means it admits it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Obj = Mapping[str, Any]

# constant.go: MaxRayClusterNameLength = 53; MaxRayJobNameLength = MaxRayClusterNameLength - 6.
MAX_RAYCLUSTER_NAME = 53
MAX_RAYJOB_NAME = MAX_RAYCLUSTER_NAME - 6
# apimachinery validation.IsDNS1035Label: at most 63 characters, [a-z]([-a-z0-9]*[a-z0-9])?
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# rayjob_controller.go: the RayCluster is named utils.GenerateRayClusterName(rayJob.Name), the
# RayJob's name, '-' and 5 random characters.
RAYCLUSTER_SUFFIX = "-abcde"
# validation.go validateRayGroupResources: these rayStartParams conflict with a `resources` map.
START_PARAM_RESOURCES = ("num-cpus", "num-gpus", "memory", "resources")
# constant.go: env names ValidateRayClusterSpec looks at on the head's Ray container.
RAY_REDIS_ADDRESS = "RAY_REDIS_ADDRESS"
REDIS_USERNAME = "REDIS_USERNAME"
RAY_ENABLE_AUTOSCALER_V2 = "RAY_enable_autoscaler_v2"
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def rayjob_problems(rayjob: Obj) -> list[str]:
    """Why KubeRay v1.7 would refuse (or silently mangle) `rayjob`; [] when it admits it."""
    problems = metadata_problems(rayjob.get("metadata") or {})
    problems += spec_problems(rayjob.get("spec") or {})
    return problems


def dns1035_problem(name: str) -> str | None:
    # apimachinery validation.IsDNS1035Label
    if len(name) > 63 or not DNS1035.match(name):
        return "must be a DNS-1035 label ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters)"
    return None


def metadata_problems(meta: Obj) -> list[str]:
    name = str(meta.get("name") or "")
    problems = []
    # validation.go ValidateRayJobMetadata: length, then DNS-1035.
    if len(name) > MAX_RAYJOB_NAME:
        problems.append(f"RayJob name {name!r} is longer than {MAX_RAYJOB_NAME} characters")
    if (why := dns1035_problem(name)) is not None:
        problems.append(f"RayJob name {name!r} {why}")
    # validation.go ValidateRayClusterMetadata, on the RayCluster the RayJob creates.
    cluster = name + RAYCLUSTER_SUFFIX
    if len(cluster) > MAX_RAYCLUSTER_NAME:
        problems.append(f"RayCluster name {cluster!r} would exceed {MAX_RAYCLUSTER_NAME}")
    return problems


def spec_problems(spec: Obj) -> list[str]:
    """validation.go ValidateRayJobSpec, for a RayJob that brings its own rayClusterSpec."""
    problems: list[str] = []
    shutdown = bool(spec.get("shutdownAfterJobFinishes", False))
    ttl = int(spec.get("ttlSecondsAfterFinished", 0) or 0)
    if spec.get("suspend") and not shutdown:
        problems.append("suspend needs shutdownAfterJobFinishes (ValidateRayJobSpec)")
    if ttl < 0:
        problems.append("ttlSecondsAfterFinished must be >= 0 (ValidateRayJobSpec)")
    problems += deletion_problems(spec, shutdown, ttl)
    if spec.get("clusterSelector"):
        problems.append("clusterSelector is not something Eureka should ever set")
    if not spec.get("rayClusterSpec"):
        problems.append("one of rayClusterSpec or clusterSelector must be set (ValidateRayJobSpec)")
    mode = spec.get("submissionMode", "K8sJobMode")
    backoff = spec.get("backoffLimit")
    if mode == "InteractiveMode" and backoff is not None and backoff > 0:
        problems.append("backoffLimit is incompatible with InteractiveMode (ValidateRayJobSpec)")
    if mode == "SidecarMode" and spec.get("submitterPodTemplate") is not None:
        problems.append("SidecarMode does not support submitterPodTemplate (ValidateRayJobSpec)")
    for key in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
        if key in spec and spec[key] is not None and spec[key] <= 0:
            problems.append(f"{key} must be positive (ValidateRayJobSpec)")
    if backoff is not None and backoff < 0:
        problems.append("backoffLimit must be >= 0 (ValidateRayJobSpec)")
    if spec.get("rayClusterSpec"):
        problems += cluster_spec_problems(spec["rayClusterSpec"])
    for name, template in [("submitter", spec.get("submitterPodTemplate"))]:
        if template is not None:
            problems += pod_problems(name, template.get("spec") or {})
    return problems


def deletion_problems(spec: Obj, shutdown: bool, ttl: int) -> list[str]:
    """validation.go validateDeletionConfiguration (RayJobDeletionPolicy gate on, 1.6+ default)."""
    problems = []
    if not shutdown and ttl > 0:
        problems.append("ttlSecondsAfterFinished needs shutdownAfterJobFinishes")
    strategy = spec.get("deletionStrategy")
    if strategy is None:
        return problems
    rules = strategy.get("deletionRules") or []
    legacy = "onSuccess" in strategy or "onFailure" in strategy
    if rules and shutdown:
        problems.append("deletionRules and shutdownAfterJobFinishes are mutually exclusive")
    if rules and legacy:
        problems.append("deletionRules and onSuccess/onFailure are mutually exclusive")
    if legacy and not ("onSuccess" in strategy and "onFailure" in strategy):
        problems.append("onSuccess and onFailure must both be set (validateLegacyDeletionPolicies)")
    if not rules and not legacy:
        problems.append("deletionStrategy needs onSuccess+onFailure or deletionRules")
    return problems


def cluster_spec_problems(cluster: Obj) -> list[str]:
    """validation.go ValidateRayClusterSpec (autoscaling off: enableInTreeAutoscaling unset)."""
    problems: list[str] = []
    if cluster.get("enableInTreeAutoscaling"):
        problems.append("Eureka's pools are fixed-size: enableInTreeAutoscaling must stay off")
    head = cluster.get("headGroupSpec") or {}
    head_pod = (head.get("template") or {}).get("spec") or {}
    if not head_pod.get("containers"):
        return ["headGroupSpec should have at least one container (ValidateRayClusterSpec)"]
    problems += group_problems("Head", head)
    problems += pod_problems("head", head_pod)
    for group in cluster.get("workerGroupSpecs") or []:
        name = str(group.get("groupName", "?"))
        pod = (group.get("template") or {}).get("spec") or {}
        if not pod.get("containers"):
            problems.append(f"worker group {name} has no container (ValidateRayClusterSpec)")
            continue
        low, high = group.get("minReplicas"), group.get("maxReplicas")
        if low is None or high is None:
            problems.append(f"worker group {name} must set minReplicas and maxReplicas")
        elif low < 0 or high < 0 or low > high:
            problems.append(f"worker group {name}: 0 <= minReplicas <= maxReplicas is violated")
        replicas = group.get("replicas")
        # KubeRay clamps replicas into [min, max]; a fixed-size pool must not be clamped.
        if None not in (replicas, low, high) and not low <= replicas <= high:
            problems.append(f"worker group {name}: replicas outside [min, max]")
        if group.get("suspend"):
            problems.append(f"worker group {name} is suspended (needs the deletion policy gate)")
        if group.get("idleTimeoutSeconds") is not None:
            problems.append(f"worker group {name}: idleTimeoutSeconds needs autoscaler v2")
        problems += group_problems(name, group)
        problems += pod_problems(name, pod)
    names = [str(g.get("groupName")) for g in cluster.get("workerGroupSpecs") or []]
    if len(set(names)) != len(names):
        problems.append("worker group names repeat (the CRD's list map key)")
    env = {e.get("name"): e for e in head_pod["containers"][0].get("env") or []}
    # ValidateRayClusterSpec: RAY_REDIS_ADDRESS implies GCS fault tolerance, which needs
    # GcsFaultToleranceOptions; redis username only through GcsFaultToleranceOptions.
    if RAY_REDIS_ADDRESS in env and not cluster.get("gcsFaultToleranceOptions"):
        problems.append(f"{RAY_REDIS_ADDRESS} set without gcsFaultToleranceOptions")
    if REDIS_USERNAME in env or (head.get("rayStartParams") or {}).get("redis-username"):
        problems.append("a redis username may only come from gcsFaultToleranceOptions")
    # ValidateRayClusterSpec: RAY_enable_autoscaler_v2 = 1/true needs enableInTreeAutoscaling.
    v2 = (env.get(RAY_ENABLE_AUTOSCALER_V2) or {}).get("value")
    if v2 in ("1", "true"):
        problems.append(f"{RAY_ENABLE_AUTOSCALER_V2}={v2} without the autoscaler")
    return problems


def group_problems(name: str, group: Obj) -> list[str]:
    problems = []
    params = {str(k): str(v) for k, v in (group.get("rayStartParams") or {}).items()}
    # validation.go validateRayGroupResources
    if any(params.get(key) for key in START_PARAM_RESOURCES) and group.get("resources"):
        problems.append(
            f"group {name}: resources set both in rayStartParams and in `resources` "
            "(validateRayGroupResources)"
        )
    # validation.go validateRayGroupLabels
    if "labels" in params:
        problems.append(f"group {name}: rayStartParams['labels'] is refused (use `labels`)")
    for key, value in (group.get("labels") or {}).items():
        if qualified_name_problem(key) or not _LABEL_VALUE.match(str(value)) or len(value) > 63:
            problems.append(f"group {name}: invalid Ray node label {key}={value}")
    # common/pod.go getResourcesMap: the value, quotes trimmed, must be a JSON object of numbers;
    # otherwise KubeRay logs an error and starts the node without the custom resources.
    if "resources" in params:
        text = params["resources"].strip("'\"` ")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed.values()
        ):
            problems.append(f"group {name}: rayStartParams.resources {text!r} is not JSON numbers")
    return problems


def qualified_name_problem(key: str) -> str | None:
    # apimachinery validation.IsQualifiedName
    prefix, _, local = key.rpartition("/")
    if "/" in key and not prefix:
        return "empty prefix"
    if len(local) > 63 or not _QUALIFIED.match(local):
        return "bad name part"
    return None


def pod_problems(where: str, pod: Obj) -> list[str]:
    """Kubernetes core validation of the pod KubeRay creates from a template (the pod's 422 would
    surface only as a KubeRay event): volume names unique DNS-1123 labels, each mount names a
    volume, mount paths unique per container, labels valid."""
    problems = []
    volumes = [str(v.get("name")) for v in pod.get("volumes") or []]
    for name in volumes:
        if not _DNS1123_LABEL.match(name) or len(name) > 63:
            problems.append(f"{where}: volume name {name!r} is not a DNS-1123 label")
    if len(set(volumes)) != len(volumes):
        problems.append(f"{where}: volume names repeat (ValidateVolumes)")
    for container in pod.get("containers") or []:
        mounts = container.get("volumeMounts") or []
        paths = [str(m.get("mountPath")) for m in mounts]
        if len(set(paths)) != len(paths):
            problems.append(f"{where}: mount paths repeat (validateVolumeMounts)")
        for mount in mounts:
            if mount.get("name") not in volumes:
                problems.append(f"{where}: mount of unknown volume {mount.get('name')!r}")
            if not str(mount.get("mountPath", "")).startswith("/"):
                problems.append(f"{where}: mountPath {mount.get('mountPath')!r} is not absolute")
        env = [e.get("name") for e in container.get("env") or []]
        if len(set(env)) != len(env):
            problems.append(f"{where}: env names repeat (the API server keeps only one)")
    return problems
