"""Pod-level fields of the RLJob (volumes, mounts, env, per-group overrides): Kubernetes shapes,
and every mistake refused with the field that holds it."""

from __future__ import annotations

from typing import Any

import pytest

from eureka_trainer.config import RLJobError, validate_rljob


def job(**resources: Any) -> dict[str, Any]:
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": "j"},
        "spec": {
            "model": {"name": "m", "hubTokenSecret": {"name": "hf", "key": "t"}},
            "data": {"trainFiles": ["/data/t.jsonl"]},
            "rollout": {"backend": "hf"},
            "resources": resources,
        },
    }


PVC = {"name": "data", "persistentVolumeClaim": {"claimName": "ds"}}


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RLJobError) as err:
        validate_rljob(doc)
    return [(p.path, p.message) for p in err.value.problems]


def test_kubernetes_shapes_pass_through() -> None:
    nfs = {"name": "models", "nfs": {"server": "10.0.0.2", "path": "/m", "readOnly": True}}
    spec = validate_rljob(
        job(
            volumes=[PVC, nfs],
            volumeMounts=[
                {"name": "data", "mountPath": "/data", "readOnly": True},
                {"name": "models", "mountPath": "/models/", "subPath": "qwen"},
            ],
            env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            envFrom=[{"secretRef": {"name": "s3", "optional": True}, "prefix": "S3_"}],
        )
    ).spec
    out = spec.resources.to_yaml_dict()
    assert out["volumes"] == [PVC, nfs]  # the source exactly as written
    assert out["volumeMounts"][1] == {"name": "models", "mountPath": "/models", "subPath": "qwen"}
    assert out["env"] == [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


@pytest.mark.parametrize(
    ("resources", "path", "words"),
    [
        ({"volumes": [{"name": "data"}]}, "spec.resources.volumes.0.name", "exactly one source"),
        (
            {"volumes": [{"name": "d", "nfs": {}, "emptyDir": {}}]},
            "spec.resources.volumes.0.name",
            "emptyDir, nfs",
        ),
        ({"volumes": [{"name": "Data", "emptyDir": {}}]}, "spec.resources.volumes.0.name", ""),
        ({"volumes": [{"name": "dshm", "emptyDir": {}}]}, "spec.resources.volumes", "reserved"),
        ({"volumes": [PVC, PVC]}, "spec.resources.volumes", "more than once"),
        (
            {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "spec.resources.volumeMounts",
            "no volume named 'data'",
        ),
        (
            {"volumes": [PVC], "volumeMounts": [{"name": "data", "mountPath": "data"}]},
            "spec.resources.volumeMounts.0.mountPath",
            "",
        ),
        (
            {"volumes": [PVC], "volumeMounts": [{"name": "data", "mountPath": "/dev/shm"}]},
            "spec.resources.volumeMounts",
            "used by the operator",
        ),
        ({"env": [{"name": "RAY_REDIS_ADDRESS", "value": "x"}]}, "spec.resources.env", "KubeRay"),
        ({"env": [{"name": "HF_TOKEN", "value": "x"}]}, "spec.resources.env", "hubTokenSecret"),
        (
            {"env": [{"name": "A", "value": "x", "valueFrom": {}}]},
            "spec.resources.env.0.valueFrom",
            "",
        ),
        ({"envFrom": [{"prefix": "P"}]}, "spec.resources.envFrom.0.configMapRef", "exactly one"),
        (
            {"workers": {"pod": {"labels": {"eureka.dev/pool": "x"}}}},
            "spec.resources.workers.pod.labels",
            "set by the operator",
        ),
        (
            {"workers": {"pod": {"labels": {"team": "a b"}}}},
            "spec.resources.workers.pod.labels",
            "label value",
        ),
        (
            {"head": {"pod": {"annotations": {"bad key": "1"}}}},
            "spec.resources.head.pod.annotations",
            "name part",
        ),
    ],
)
def test_mistakes_name_their_field(resources: dict[str, Any], path: str, words: str) -> None:
    found = problems(job(**resources))
    assert any(p == path and words in m for p, m in found), found


def test_a_mount_over_the_checkpoint_folder_is_refused() -> None:
    doc = job(volumes=[PVC], volumeMounts=[{"name": "data", "mountPath": "/checkpoints"}])
    assert problems(doc)[0][0] == "spec.resources.volumeMounts"


def test_gpus_are_released_at_once_by_default() -> None:
    assert validate_rljob(job()).spec.run_policy.ttl_seconds_after_finished == 0
