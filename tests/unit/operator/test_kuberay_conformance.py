"""Every RLJob `eureka validate` accepts renders to a RayJob that KubeRay v1.7 admits.

KubeRay's rules are in tests/kuberay/rules.py (each naming its validation.go function); its CRD
schema is the vendored tests/kuberay/data/ray.io_rayjobs.yaml. Checked on every example through
`eureka render` and on generated RLJobs (hypothesis).
"""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eureka_operator.builder import build_objects, rayjob_name
from eureka_operator.render import render
from eureka_trainer.config import RLJobError, validate_rljob
from tests.kuberay.rules import metadata_problems, rayjob_problems

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
CRD = REPO / "tests" / "kuberay" / "data" / "ray.io_rayjobs.yaml"


@functools.cache
def schema_validator() -> jsonschema.Draft4Validator:
    crd = yaml.load(CRD.read_text(), Loader=yaml.CSafeLoader)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft4Validator(v1["schema"]["openAPIV3Schema"])


def admitted(rayjob: dict[str, Any]) -> None:
    """KubeRay's CRD schema (the API server) and its controller's rules both accept `rayjob`."""
    errors = [e.message for e in schema_validator().iter_errors(rayjob)]
    assert not errors, errors[:3]
    assert rayjob_problems(rayjob) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_render_of_every_example_passes_kuberay(example: Path) -> None:
    text = render(str(example), kinds=["RayJob"])
    assert "&id" not in text and "*id" not in text, "render must print no YAML anchors"
    (rayjob,) = [d for d in yaml.safe_load_all(text) if d]
    admitted(rayjob)


def test_the_rules_catch_what_kuberay_refuses() -> None:
    """Each rule fires on the mistake it is about (else the checks above prove nothing)."""
    doc = yaml.safe_load(EXAMPLES[0].read_text())
    base = build_objects(validate_rljob(doc))[-1]

    def broken(change: Any) -> list[str]:
        rayjob = yaml.safe_load(yaml.safe_dump(base))
        change(rayjob["spec"], rayjob["metadata"])
        return rayjob_problems(rayjob)

    groups = lambda s: s["rayClusterSpec"]["workerGroupSpecs"]  # noqa: E731
    head = lambda s: s["rayClusterSpec"]["headGroupSpec"]  # noqa: E731
    # The shape every worker group had before: num-gpus and a `resources` map together.
    assert broken(lambda s, m: groups(s)[0].update(resources={"eureka_rollout": "1000"}))
    assert broken(lambda s, m: m.update(name="7b-grpo"))  # DNS-1035: starts with a digit
    assert broken(lambda s, m: m.update(name="a" * 48))  # longer than 47
    assert broken(lambda s, m: s.update(suspend=True, shutdownAfterJobFinishes=False))
    assert broken(lambda s, m: s.update(shutdownAfterJobFinishes=False, ttlSecondsAfterFinished=9))
    assert broken(lambda s, m: groups(s)[0].pop("minReplicas"))
    assert broken(lambda s, m: groups(s)[0]["rayStartParams"].update(resources="{eureka: x}"))
    assert broken(lambda s, m: groups(s)[0]["rayStartParams"].update(labels="a=b"))
    assert broken(lambda s, m: s.update(activeDeadlineSeconds=0))
    assert broken(
        lambda s, m: head(s)["template"]["spec"]["containers"][0]["env"].append(
            {"name": "RAY_enable_autoscaler_v2", "value": "1"}
        )
    )
    assert broken(
        lambda s, m: head(s)["template"]["spec"]["containers"][0]["volumeMounts"].append(
            {"name": "nowhere", "mountPath": "/x"}
        )
    )


@pytest.mark.parametrize(
    "name", ["7b-grpo", "a" * 48, "x" * 63, "0" * 63, "ok-name", "a-" + "b" * 44 + "c"]
)
def test_rayjob_names_always_conform_and_never_collide(name: str) -> None:
    derived = rayjob_name(name)
    assert metadata_problems({"name": derived}) == [], derived
    if len(name) <= 47 and name[0].isalpha():
        assert derived == name  # a name KubeRay accepts is kept as is
    else:  # mapped: hashed, so two RLJobs of similar names never share a RayJob
        assert derived != rayjob_name(name[:-1] + "z")
        assert derived != name[: len(derived)]


# --- generated RLJobs -------------------------------------------------------------------------

label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z", fullmatch=True)
ENV_NAMES = ["HF_HOME", "NCCL_DEBUG", "PIP_INDEX_URL", "HF_TOKEN", "EUREKA_RLJOB_NAME"]
KUBERAY_ENV = ["RAY_REDIS_ADDRESS", "RAY_enable_autoscaler_v2", "REDIS_USERNAME"]
env_name = st.sampled_from(ENV_NAMES + KUBERAY_ENV)
mount_path = st.sampled_from(["/data", "/models", "/cache", "/data/images", "/dev/shm", "/ckpt"])
# Mostly names that pass validation, some that must be refused (reserved or malformed).
volume_name = st.sampled_from(["data", "models", "cache", "data", "models", "dshm", "shared-mem"])
label_key = st.sampled_from(["team", "example.com/tier", "app", "eureka.dev/pool", "bad key"])
label_value = st.text(alphabet=string.ascii_lowercase + "-._", max_size=8)


@st.composite
def pool(draw: Any) -> dict[str, Any]:
    return {
        "replicas": draw(st.integers(1, 3)),
        "gpus": draw(st.sampled_from([0, 1, 2, 8])),
        "pod": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "labels": st.dictionaries(label_key, label_value, max_size=2),
                    "runtimeClassName": st.just("nvidia"),
                    "priorityClassName": st.just("high"),
                    "serviceAccountName": st.just("reader"),
                    "affinity": st.just({"nodeAffinity": {}}),
                },
            )
        ),
    }


@st.composite
def rljobs(draw: Any) -> dict[str, Any]:
    placement = draw(st.sampled_from(["colocated", "split"]))
    resources: dict[str, Any] = {"placement": placement}
    if placement == "colocated":
        resources["workers"] = draw(pool())
        trainer_pool = resources["workers"]
    else:
        resources["rollout"], resources["learner"] = draw(pool()), draw(pool())
        trainer_pool = resources["learner"]
    world = trainer_pool["replicas"] * (trainer_pool["gpus"] or 1)
    volumes = draw(st.lists(volume_name, max_size=3, unique=True))
    resources["volumes"] = [
        {"name": v, "persistentVolumeClaim": {"claimName": f"pvc-{v}"}} for v in volumes
    ]
    paths = draw(st.lists(mount_path, max_size=len(volumes), unique=True))
    resources["volumeMounts"] = [
        {"name": draw(st.sampled_from([*volumes, "nowhere"])), "mountPath": p, "readOnly": True}
        for p in paths
    ]
    resources["env"] = [
        {"name": draw(env_name), "value": "1"} for _ in range(draw(st.integers(0, 2)))
    ]
    policy = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "suspend": st.booleans(),
                "backoffLimit": st.integers(0, 3),
                "ttlSecondsAfterFinished": st.integers(0, 10**5),
                "activeDeadlineSeconds": st.integers(1, 10**6),
                "preRunningDeadlineSeconds": st.integers(1, 10**4),
            },
        )
    )
    storage = draw(st.sampled_from([{}, {"claimName": "ckpt", "path": "/ckpt"}, {"path": "rel"}]))
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": draw(label), "namespace": "ns"},
        "spec": {
            "model": {"name": "m", "hubTokenSecret": {"name": "hf", "key": "t"}},
            "data": {"trainFiles": ["/data/t.jsonl"]},
            "algorithm": {
                "estimator": "grpo",
                "samplesPerPrompt": 2,
                "rolloutBatchSize": world,
                "trainBatchSize": world,
            },
            "rollout": {"backend": "hf"},
            "learner": {"backend": "torch"},
            "resources": resources,
            "checkpoint": {"storage": storage},
            "runPolicy": policy,
        },
    }


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(rljobs())
def test_every_rljob_validate_accepts_renders_to_a_rayjob_kuberay_admits(
    doc: dict[str, Any],
) -> None:
    try:
        job = validate_rljob(doc)
    except RLJobError as err:
        event(f"refused: {err.problems[0].path}")
        return  # refused at validation: the operator never builds it
    event("accepted")
    admitted(build_objects(job, uid="u")[-1])


def test_validate_and_the_operator_agree_on_the_rayjob_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eureka_operator.cli import main

    doc = yaml.safe_load(EXAMPLES[0].read_text())
    doc["metadata"]["name"] = "7b-grpo"
    path = tmp_path / "rljob.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    rendered = [d for d in yaml.safe_load_all(render(str(path), kinds=["RayJob"])) if d]
    name = rendered[0]["metadata"]["name"]
    assert f"its RayJob will be named {name}" in out and name == rayjob_name("7b-grpo")


def test_render_never_prints_anchors_even_for_shared_objects() -> None:
    from eureka_operator.render import _Dumper

    shared = {"cpu": "1"}
    text = yaml.dump({"requests": shared, "limits": shared}, Dumper=_Dumper)
    assert "&" not in text and "*" not in text
