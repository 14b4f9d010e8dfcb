"""The job service in the Helm chart: rendered objects, RBAC by mode, security, Ingress."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.integration.operator.manifests_gen import helm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHART = Path(__file__).resolve().parents[3] / "charts" / "eureka"
ON = ["--set", "jobService.enabled=true"]


def render(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm(), "template", "eureka", str(CHART), "--namespace", "eureka-system", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def service_objects(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The job service's objects by kind (+ name suffix where a kind repeats)."""
    mine = [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "job-service"
    ]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in mine}


def rules_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    objs = service_objects(docs).values()
    return [r for d in objs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]


def test_off_by_default() -> None:
    assert service_objects(render()) == {}


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--set", "jobService.writes.enabled=true", "--set", "jobService.protectReads=true"],
        ["--set", "jobService.watchNamespace=team-a"],
        [
            "--set",
            "jobService.ingress.enabled=true",
            "--set",
            "jobService.ingress.className=nginx",
            "--set",
            "jobService.ingress.tls[0].secretName=eureka-tls",
            "--set",
            "jobService.ingress.tls[0].hosts[0]=eureka.example.com",
        ],
    ],
)
def test_objects_are_valid_kubernetes(extra: list[str]) -> None:
    objects = service_objects(render(*ON, *extra))
    kinds = sorted(name.split("/")[0] for name in objects)
    assert {"Deployment", "Service", "ServiceAccount"} <= set(kinds)
    for doc in objects.values():
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_read_only_by_default_and_hardened() -> None:
    docs = render(*ON)
    rules = rules_of(docs)
    rljobs = [r for r in rules if "rljobs" in r["resources"]]
    assert rljobs == [
        {"apiGroups": ["eureka.dev"], "resources": ["rljobs"], "verbs": ["get", "list", "watch"]}
    ]
    assert not any(
        k.startswith("ClusterRoleBinding/") and "auth-delegator" in k for k in service_objects(docs)
    )
    (deployment,) = [d for k, d in service_objects(docs).items() if k.startswith("Deployment/")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--read-only" in container["args"] and "--backend=kubernetes" in container["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["serviceAccountName"] == "eureka-job-service"
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]


def test_writes_enabled_grants_writes_and_token_checks() -> None:
    docs = render(*ON, "--set", "jobService.writes.enabled=true")
    objects = service_objects(docs)
    (rljobs,) = [r for r in rules_of(docs) if "rljobs" in r["resources"]]
    assert rljobs["verbs"] == ["get", "list", "watch", "create", "patch", "delete"]
    binding = objects["ClusterRoleBinding/eureka-job-service-auth-delegator"]
    assert binding["roleRef"]["name"] == "system:auth-delegator"
    (deployment,) = [d for k, d in objects.items() if k.startswith("Deployment/")]
    assert "--read-only" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_one_namespace_gets_a_role() -> None:
    docs = render(*ON, "--set", "jobService.watchNamespace=team-a")
    objects = service_objects(docs)
    assert not any(k.startswith("ClusterRole/") for k in objects)
    role = objects["Role/eureka-job-service"]
    assert role["metadata"]["namespace"] == "team-a"
    (deployment,) = [d for k, d in objects.items() if k.startswith("Deployment/")]
    assert "--namespace=team-a" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_ingress_routes_to_the_service() -> None:
    objects = service_objects(render(*ON, "--set", "jobService.ingress.enabled=true"))
    ingress = objects["Ingress/eureka-job-service"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "eureka.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "eureka-job-service", "port": {"name": "http"}}
    assert objects["Service/eureka-job-service"]["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "jobService.ingress.enabled=true", "--set", "jobService.ingress.host="], "host"),
        (["--set", "jobService.writes=yes"], "jobService"),
        (["--set", "jobService.replicas=-1"], "replicas"),
    ],
)
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        render(*ON, *args)
    assert message in err.value.stderr


def test_the_service_answers_its_own_names_only() -> None:
    # eureka serve refuses foreign Host names (eureka_service/hosts.py); in a cluster it is
    # reached by its Service's DNS names and, when enabled, the Ingress host.
    objects = service_objects(render(*ON, "--set", "jobService.ingress.enabled=true"))
    (deployment,) = [d for k, d in objects.items() if k.startswith("Deployment/")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    (allowed,) = [a.removeprefix("--allowed-host=") for a in args if a.startswith("--allowed-host")]
    (service,) = [d for k, d in objects.items() if k.startswith("Service/")]
    name = service["metadata"]["name"]
    assert allowed.split(",") == [
        name,
        f"{name}.eureka-system",
        f"{name}.eureka-system.svc",
        f"{name}.eureka-system.svc.cluster.local",
        "eureka.example.com",
    ]
