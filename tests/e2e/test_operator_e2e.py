"""The operator's story on a real cluster (kind + KubeRay 1.7), opt-in: runs only when KUBECONFIG is set.

    kind create cluster
    helm install kuberay-operator kuberay/kuberay-operator --version 1.7.0
    kubectl apply -f manifests/crd/eureka.dev_rljobs.yaml
    KUBECONFIG=~/.kube/config make e2e

The operator runs as `eureka operator` in a subprocess, logged in as a ServiceAccount that holds
exactly the chart's RBAC (manifests/rbac/operator-rbac.yaml, generated from the chart), not the
admin kubeconfig the test itself uses: a rule the chart lacks fails here as it would in production.
The job is a CPU-only RLJob. Without the trainer image in the cluster, the job stops at
Initializing (image pull): the test checks the operator's side of the story, which does not need
it to train. Image: EUREKA_E2E_IMAGE (default: the chart's trainer image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a cluster: set KUBECONFIG"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl"),
]


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    out = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    if check and out.returncode:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def get(kind: str, name: str, ns: str) -> dict[str, Any] | None:
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(out) if out.strip() else None


def wait(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def namespace() -> Iterator[str]:
    for crd in ("rljobs.eureka.dev", "rayjobs.ray.io"):
        if kubectl("get", "crd", crd, check=False).strip() == "":
            pytest.skip(f"CRD {crd} is not installed (see this module's docstring)")
    ns = f"eureka-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


REPO = Path(__file__).resolve().parents[2]
OPERATOR_RBAC = REPO / "manifests" / "rbac" / "operator-rbac.yaml"
OPERATOR_SA = "eureka-operator"


def chart_rbac_kubeconfig(ns: str, path: Path) -> Path:
    """A kubeconfig logged in as a ServiceAccount of `ns` bound to the chart's operator rules."""
    kubectl("create", "serviceaccount", OPERATOR_SA, "-n", ns)
    docs = [d for d in yaml.safe_load_all(OPERATOR_RBAC.read_text()) if d]
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] = f"{doc['metadata']['name']}-{ns}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{ns}"
            doc["subjects"] = [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": ns}]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    token = kubectl("create", "token", OPERATOR_SA, "-n", ns, "--duration=1h").strip()
    current = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json"))
    cluster = current["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": OPERATOR_SA, "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": cluster["name"], "user": OPERATOR_SA}}],
        "current-context": "op",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def operator(namespace: str, tmp_path: Path) -> Iterator[None]:
    config = chart_rbac_kubeconfig(namespace, tmp_path / "operator-kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(config)}
    cmd = [sys.executable, "-m", "eureka_operator.cli", "operator", "-n", namespace]
    proc = subprocess.Popen([*cmd, "--standalone", "--metrics-port", "0"], env=env)
    time.sleep(5)
    assert proc.poll() is None, "the operator exited at start (see its log above)"
    yield
    proc.terminate()
    proc.wait(60)
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl("delete", kind, f"eureka-operator-cluster-{namespace}", check=False)


def rljob(name: str, ns: str) -> dict[str, Any]:
    image = os.environ.get("EUREKA_E2E_IMAGE", "ghcr.io/eureka-dev/eureka-trainer:0.1.0")
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"name": "tiny", "dtype": "float32"},
            "data": {"trainFiles": ["/data/train.jsonl"]},
            "algorithm": {
                "estimator": "grpo",
                "samplesPerPrompt": 2,
                "rolloutBatchSize": 2,
                "trainBatchSize": 4,
            },
            "rollout": {"backend": "hf"},
            "learner": {"backend": "torch"},
            "resources": {
                "image": image,
                "head": {"cpu": "500m", "memory": "1Gi"},
                "workers": {"cpu": "500m", "memory": "1Gi"},
            },
        },
    }


def test_rljob_story_on_a_real_cluster(namespace: str, operator: None) -> None:
    ns = namespace
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(rljob("story", ns)))
    rayjob = wait("RayJob", lambda: get("rayjob", "story", ns))
    uid = get("rljob", "story", ns)["metadata"]["uid"]  # type: ignore[index]
    assert rayjob["metadata"]["ownerReferences"][0]["uid"] == uid
    # KubeRay accepted the RayJob (not ValidationFailed) and the RLJob follows its state.
    deployment = wait(
        "KubeRay status",
        lambda: (get("rayjob", "story", ns) or {}).get("status", {}).get("jobDeploymentStatus"),
    )
    assert deployment != "ValidationFailed", get("rayjob", "story", ns)
    phase = lambda: (get("rljob", "story", ns) or {}).get("status", {}).get("phase")  # noqa: E731
    wait(
        "RLJob phase from KubeRay",
        lambda: phase() in {"Initializing", "Running", "Succeeded", "Failed"},
    )
    events = kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=story", "-o", "json"
    )
    assert any(
        e["reason"] in {"RayClusterStarting", "RayJobCreated"} for e in json.loads(events)["items"]
    )
    # Suspend: the RayJob is suspended and the Ray cluster released.
    kubectl(
        "patch",
        "rljob",
        "story",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"runPolicy":{"suspend":true}}}',
    )
    wait(
        "RayJob suspended",
        lambda: (get("rayjob", "story", ns) or {}).get("spec", {}).get("suspend") is True,
    )
    wait("Suspended", lambda: phase() == "Suspended", timeout=300)
    # Delete: the children go with the owner.
    kubectl("delete", "rljob", "story", "-n", ns, "--wait=true")
    wait("RayJob gone", lambda: get("rayjob", "story", ns) is None)
    assert get("configmap", "story-rljob", ns) is None or wait(
        "ConfigMap gone", lambda: get("configmap", "story-rljob", ns) is None
    )


def test_a_name_kuberay_refuses_runs_under_a_derived_rayjob_name(
    namespace: str, operator: None
) -> None:
    ns, name = namespace, "7b-grpo-" + "x" * 50  # starts with a digit, 58 characters
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(rljob(name, ns)))
    status = lambda: (get("rljob", name, ns) or {}).get("status", {})  # noqa: E731
    rayjob_name = wait("status.rayJobName", lambda: status().get("rayJobName"))
    assert rayjob_name != name and len(rayjob_name) <= 47
    deployment = wait(
        "KubeRay status",
        lambda: (get("rayjob", rayjob_name, ns) or {}).get("status", {}).get("jobDeploymentStatus"),
    )
    assert deployment != "ValidationFailed"
