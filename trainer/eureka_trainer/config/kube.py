"""Kubernetes core types an RLJob passes to its pods: volumes, mounts, env, per-group overrides.

Shapes are Kubernetes' own (`core/v1` Volume, VolumeMount, EnvVar, EnvFromSource), so a platform
engineer writes what they would write in a pod spec. What the operator relies on is validated
here (names, paths, references); the rest of a volume source (`persistentVolumeClaim`, `nfs`,
`csi`, ...) and of an affinity passes through unchanged and is checked by the API server when
KubeRay creates the pods (the CRD keeps it with `x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from eureka_trainer.config.base import ApiModel, field_error

# Kubernetes' DNS-1123 label (apimachinery validation.IsDNS1123Label): volume and container names.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Environment variable names: validation.IsEnvVarName (printable ASCII without '=').
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Volumes and mount paths the operator (or KubeRay, pod.go addEmptyDir) puts into every Ray pod.
RESERVED_VOLUMES = frozenset({"dshm", "checkpoints", "rljob-spec", "shared-mem", "ray-logs"})
RESERVED_MOUNT_PATHS = frozenset({"/dev/shm", "/etc/eureka", "/tmp/ray"})
# Env the operator sets, and env KubeRay's ValidateRayClusterSpec refuses on a Ray container when
# GCS fault tolerance / the v2 autoscaler are off (validation.go: RAY_REDIS_ADDRESS,
# REDIS_USERNAME, REDIS_PASSWORD with GcsFaultToleranceOptions, RAY_enable_autoscaler_v2).
RESERVED_ENV = frozenset(
    {
        "EUREKA_RLJOB_NAME",
        "EUREKA_RLJOB_NAMESPACE",
        "RAY_REDIS_ADDRESS",
        "REDIS_USERNAME",
        "REDIS_PASSWORD",
        "RAY_enable_autoscaler_v2",
    }
)
# Pod labels the operator's watches select on (eureka.dev/rljob, eureka.dev/pool).
RESERVED_LABEL_PREFIX = "eureka.dev/"


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes qualified name (label / annotation key), or None.

    apimachinery validation.IsQualifiedName: optional DNS-1123 subdomain prefix (<= 253) and '/',
    then a name of <= 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric.
    """
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f"{key!r}: the prefix must be a DNS subdomain of at most 253 characters"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"{key!r}: the name part must be 1-63 characters of [A-Za-z0-9-_.], starting and "
            "ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """apimachinery validation.IsValidLabelValue: <= 63 characters, empty or alphanumeric ends."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"{value!r}: a label value is at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends"
    return None


class Volume(ApiModel):
    """A Kubernetes Volume (`core/v1`): `name` plus exactly one source, e.g.
    `persistentVolumeClaim: {claimName: data, readOnly: true}`, `nfs`, `csi`, `configMap`,
    `secret`, `emptyDir`, `hostPath`. The source is passed to the pods as written."""

    model_config = ConfigDict(**{**ApiModel.model_config, "extra": "allow"})

    name: str = Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)
    """Volume name (a DNS-1123 label), referenced by `volumeMounts[].name`."""

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        sources = sorted(self.model_extra or {})
        if len(sources) != 1:
            found = ", ".join(sources) or "none"
            raise field_error(
                "name",
                f"volume {self.name!r} needs exactly one source (persistentVolumeClaim, nfs, "
                f"csi, ...); found: {found}",
            )
        if not isinstance((self.model_extra or {})[sources[0]], dict):
            raise field_error(sources[0], "must be an object (the volume source)")
        return self


class VolumeMount(ApiModel):
    """A Kubernetes VolumeMount (`core/v1`): where a volume appears in the Ray containers."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)
    """Name of a volume in `volumes`."""
    mount_path: str = Field(min_length=2, pattern=r"^/")
    """Absolute path in the container (e.g. `/data`)."""
    read_only: bool | None = None
    """Mount read-only (recommended for datasets and models)."""
    sub_path: str | None = None
    """Path inside the volume to mount instead of its root."""

    @field_validator("mount_path")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value:  # core/v1 validation refuses ':' in mountPath on Linux pods
            raise ValueError("must not contain ':'")
        return value.rstrip("/") or "/"


class EnvVar(ApiModel):
    """A Kubernetes EnvVar (`core/v1`): `value`, or `valueFrom` (secretKeyRef, configMapKeyRef,
    fieldRef, resourceFieldRef) passed through as written."""

    name: str = Field(min_length=1, pattern=ENV_NAME)
    """Variable name."""
    value: str | None = None
    """Literal value (never put a secret here: use `valueFrom.secretKeyRef`)."""
    value_from: dict[str, Any] | None = None
    """Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."""

    @model_validator(mode="after")
    def _one_value(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise field_error("valueFrom", f"env {self.name!r} sets both value and valueFrom")
        return self


class ObjectRef(ApiModel):
    """A ConfigMap or Secret in the RLJob's namespace, by name."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the object."""
    optional: bool | None = None
    """Start the pod even when the object is missing."""


class EnvFromSource(ApiModel):
    """A Kubernetes EnvFromSource (`core/v1`): every key of a ConfigMap or Secret as env."""

    prefix: str | None = None
    """Prefix added to every variable name."""
    config_map_ref: ObjectRef | None = None
    """The ConfigMap."""
    secret_ref: ObjectRef | None = None
    """The Secret."""

    @model_validator(mode="after")
    def _one_ref(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise field_error("configMapRef", "set exactly one of configMapRef and secretRef")
        return self


class PodOverrides(ApiModel):
    """Pod-level settings of one group's pods (head, or a worker pool)."""

    labels: dict[str, str] = Field(default_factory=dict)
    """Extra pod labels (`eureka.dev/` keys are the operator's)."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Extra pod annotations."""
    affinity: dict[str, Any] | None = None
    """A Kubernetes Affinity (nodeAffinity, podAffinity, podAntiAffinity), passed as written."""
    priority_class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """PriorityClass of this group's pods (overrides `resources.priorityClassName`)."""
    runtime_class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """RuntimeClass of this group's pods (e.g. `nvidia`)."""
    service_account_name: str | None = Field(default=None, min_length=1, max_length=253)
    """ServiceAccount of this group's pods instead of the job's own (on the head, it is also
    bound to the job's status Role, so the trainer can still report)."""

    @model_validator(mode="after")
    def _keys_valid(self) -> PodOverrides:
        for field, mapping in (("labels", self.labels), ("annotations", self.annotations)):
            for key, value in mapping.items():
                problem = qualified_name_problem(key)
                if problem is None and field == "labels":
                    problem = label_value_problem(value)
                if problem is None and key.startswith(RESERVED_LABEL_PREFIX) and field == "labels":
                    problem = (
                        f"{key!r}: labels under {RESERVED_LABEL_PREFIX} are set by the operator"
                    )
                if problem:
                    raise field_error(field, problem)
        return self
