"""The RLJob's `resources`: Ray's pools of pods, the head pod, and what every pod gets (image,
volumes, environment, scheduling). Part of the spec (`config.spec`), kept apart for size."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal

from pydantic import Field, model_validator

from eureka_trainer.config.base import ApiModel, field_error
from eureka_trainer.config.kube import (
    RESERVED_ENV,
    RESERVED_MOUNT_PATHS,
    RESERVED_VOLUMES,
    EnvFromSource,
    EnvVar,
    PodOverrides,
    Volume,
    VolumeMount,
)
from eureka_trainer.config.quantity import Quantity

DEFAULT_TRAINER_IMAGE = "ghcr.io/eureka-dev/eureka-trainer:0.1.0"


class Toleration(ApiModel):
    """A Kubernetes toleration."""

    key: str | None = None
    """Taint key."""
    operator: Literal["Exists", "Equal"] | None = None
    """`Exists` or `Equal`."""
    value: str | None = None
    """Taint value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect."""
    toleration_seconds: int | None = None
    """How long a NoExecute taint is tolerated."""


class PoolSpec(ApiModel):
    """One group of Ray worker pods."""

    replicas: int = Field(default=1, ge=1)
    """Pods in the group."""
    gpus: int = Field(default=0, ge=0)
    """GPUs per pod (`nvidia.com/gpu`)."""
    cpu: Quantity = "4"
    """CPU request and limit per pod."""
    memory: Quantity = "32Gi"
    """Memory request and limit per pod."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the pods must match."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Taints the pods tolerate."""
    pod: PodOverrides = Field(default_factory=PodOverrides)
    """Labels, annotations, affinity, priorityClassName, runtimeClassName, serviceAccountName
    of this pool's pods."""

    @property
    def total_gpus(self) -> int:
        """GPUs across every pod of the group."""
        return self.replicas * self.gpus


class HeadSpec(ApiModel):
    """The Ray head pod, which runs the trainer driver (CPU only)."""

    cpu: Quantity = "2"
    """CPU request and limit."""
    memory: Quantity = "8Gi"
    """Memory request and limit."""
    pod: PodOverrides = Field(default_factory=PodOverrides)
    """Labels, annotations, affinity, priorityClassName, runtimeClassName, serviceAccountName
    of the head pod."""


class ResourcesSpec(ApiModel):
    """Where the job runs: pools, GPUs and scheduling."""

    placement: Literal["colocated", "split"] = "colocated"
    """`colocated`: rollout and learner share one pool's GPUs (vLLM sleeps during updates);
    `split`: separate `rollout` and `learner` pools."""
    image: str = DEFAULT_TRAINER_IMAGE
    """Trainer image of every Ray pod."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Image pull policy."""
    image_pull_secrets: list[str] = Field(default_factory=list)
    """Names of Secrets used to pull the image."""
    head: HeadSpec = Field(default_factory=HeadSpec)
    """The Ray head (driver) pod."""
    workers: PoolSpec | None = None
    """The single pool of `colocated` placement."""
    rollout: PoolSpec | None = None
    """The vLLM pool of `split` placement."""
    learner: PoolSpec | None = None
    """The learner pool of `split` placement."""
    priority_class_name: str | None = None
    """PriorityClass of every pod."""
    volumes: list[Volume] = Field(default_factory=list)
    """Kubernetes volumes added to every Ray pod (head and workers): datasets, models, caches.
    A dataset on a PVC: `{name: data, persistentVolumeClaim: {claimName: my-data, readOnly: true}}`."""
    volume_mounts: list[VolumeMount] = Field(default_factory=list)
    """Where `volumes` appear in every Ray container (e.g. `{name: data, mountPath: /data,
    readOnly: true}`)."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables of every Ray container (e.g. `HF_HOME`, proxies)."""
    env_from: list[EnvFromSource] = Field(default_factory=list)
    """ConfigMaps and Secrets whose keys become environment variables of every Ray container."""

    @model_validator(mode="after")
    def _pod_fields_consistent(self) -> ResourcesSpec:
        names = [v.name for v in self.volumes]
        _refuse_reserved_or_repeated(
            "volumes",
            names,
            RESERVED_VOLUMES,
            reserved=lambda name: f"volume name {name!r} is reserved for the operator",
            repeated=lambda name: f"volume {name!r} is listed more than once",
        )
        paths = [m.mount_path for m in self.volume_mounts]
        for mount in self.volume_mounts:
            if mount.name not in names:
                raise field_error(
                    "volumeMounts", f"{mount.mount_path}: no volume named {mount.name!r} in volumes"
                )
            if mount.mount_path in RESERVED_MOUNT_PATHS:
                raise field_error("volumeMounts", f"{mount.mount_path} is used by the operator")
            if paths.count(mount.mount_path) > 1:
                raise field_error("volumeMounts", f"{mount.mount_path} is mounted more than once")
        _refuse_reserved_or_repeated(
            "env",
            [e.name for e in self.env],
            RESERVED_ENV,
            reserved=lambda name: f"{name} is set by the operator or refused by KubeRay",
            repeated=lambda name: f"{name} is listed more than once",
        )
        return self

    @model_validator(mode="after")
    def _pools_match_placement(self) -> ResourcesSpec:
        if self.placement == "colocated":
            if self.rollout is not None or self.learner is not None:
                raise field_error("placement", "colocated takes `workers`, not `rollout`/`learner`")
            if self.workers is None:
                self.workers = PoolSpec()
        else:
            if self.workers is not None:
                raise field_error(
                    "workers", "split placement takes `rollout` and `learner` instead"
                )
            if self.rollout is None or self.learner is None:
                raise field_error("placement", "split needs both `rollout` and `learner` pools")
        return self


def _refuse_reserved_or_repeated(
    field: str,
    names: list[str],
    taken: Collection[str],
    *,
    reserved: Callable[[str], str],
    repeated: Callable[[str], str],
) -> None:
    """A field error for the first name in `taken` (the operator's own) or listed twice."""
    for name in names:
        if name in taken:
            raise field_error(field, reserved(name))
        if names.count(name) > 1:
            raise field_error(field, repeated(name))
