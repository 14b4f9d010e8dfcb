"""The Helm chart: lint, render, Kubernetes schemas (offline), security and RBAC, manifests drift.

Kubernetes schemas come from the `kubernetes-validate` PyPI package (JSON schemas of every
Kubernetes release, shipped in the wheel), so validation needs no network.
"""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.integration.operator.manifests_gen import (
    CHART,
    REPO,
    expected_files,
    helm,
    helm_template,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
K8S = "1.30.0"
VALUE_SETS: dict[str, list[str]] = {
    "default": [],
    "ha": ["--set", "operator.replicas=2", "--set", "operator.peering.enabled=true"],
    "namespaced": [
        "--set",
        "operator.namespaces={team-a,team-b}",
        "--set",
        "operator.verbose=true",
    ],
}
KOPF_PEERING_CRDS = REPO / "manifests" / "operator" / "kopf-peering-crds.yaml"


def k8s_validate(doc: dict[str, Any]) -> None:
    """Kubernetes' own schema (strict: unknown fields fail); kopf's peering CRs by their CRD."""
    if doc["apiVersion"] == "kopf.dev/v1":
        crds = {
            c["spec"]["names"]["kind"]: c for c in yaml.safe_load_all(KOPF_PEERING_CRDS.read_text())
        }
        schema = crds[doc["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.Draft4Validator(schema).validate(doc)
        return
    kubernetes_validate.validate(doc, K8S, strict=True)


def test_helm_lint_is_clean() -> None:
    out = subprocess.run([helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_rendered_object_is_valid_kubernetes(values: str) -> None:
    docs = helm_template(*VALUE_SETS[values])
    assert {"Deployment", "ServiceAccount", "ClusterRole"} <= {d["kind"] for d in docs}
    for doc in docs:
        k8s_validate(doc)


def test_the_validator_catches_mistakes() -> None:
    (deployment,) = [d for d in helm_template() if d["kind"] == "Deployment"]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for bad in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            k8s_validate(bad)


def test_pods_run_as_non_root_without_privileges() -> None:
    for values in VALUE_SETS.values():
        for doc in helm_template(*values):
            if doc["kind"] != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"]:
                ctx = container["securityContext"]
                assert ctx["allowPrivilegeEscalation"] is False
                assert ctx["capabilities"]["drop"] == ["ALL"]
                assert ctx["readOnlyRootFilesystem"] is True


def test_operator_rbac_is_least_privilege() -> None:
    for values in VALUE_SETS.values():
        for doc in helm_template(*values):
            for rule in doc.get("rules", []):
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
                assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"], (
                    rule
                )
                assert "secrets" not in rule["resources"], rule


def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


@pytest.mark.parametrize("values", ["default", "namespaced"])
def test_operator_rbac_allows_every_child_the_builder_makes(values: str) -> None:
    """Create on every kind `build_objects` returns, and, since each child's ownerReference sets
    blockOwnerDeletion, update on rljobs/finalizers: the OwnerReferencesPermissionEnforcement
    admission plugin (kube-apiserver plugin/pkg/admission/gc) refuses the create otherwise."""
    from eureka_operator.builder import build_objects
    from eureka_operator.kube import KINDS
    from eureka_trainer.config import validate_rljob

    docs = helm_template(*VALUE_SETS[values])
    kind = "ClusterRole" if values == "default" else "Role"
    rules = [rule for d in docs if d["kind"] == kind for rule in d.get("rules", [])]
    doc = yaml.safe_load((REPO / "manifests" / "examples" / "rljob.yaml").read_text())
    children = build_objects(validate_rljob(doc), uid="u")
    for child in children:
        api_version, plural = KINDS[child["kind"]]
        group = api_version.rpartition("/")[0]
        assert allowed(rules, group, plural, "create"), child["kind"]
        assert child["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    assert allowed(rules, "eureka.dev", "rljobs/finalizers", "update")


def test_namespaced_install_uses_roles_not_cluster_rules() -> None:
    docs = helm_template(*VALUE_SETS["namespaced"])
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert not any("rljobs" in r["resources"] for r in cluster_role["rules"])
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "operator.replicas=2"], "needs operator.peering.enabled=true"),
        (["--set", "securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
    ],
)
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        helm_template(*args)
    assert message in err.value.stderr


def test_checked_in_manifests_match_the_chart() -> None:
    for path, text in expected_files().items():
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} is stale: run "
            "`PATH=.tools/bin:$PATH .venv/bin/python -m tests.integration.operator.manifests_gen`"
        )
    for doc in yaml.safe_load_all(KOPF_PEERING_CRDS.read_text()):
        k8s_validate(doc)
