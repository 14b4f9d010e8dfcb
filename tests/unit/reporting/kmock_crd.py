"""The RLJob resource declared in the kmock API emulator from the checked-in CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CRD = Path(__file__).resolve().parents[3] / "manifests" / "crd" / "eureka.dev_rljobs.yaml"
RLJOBS = "eureka.dev/v1alpha1/rljobs"


def declare_rljobs(kmock: Any) -> None:
    """Declare `rljobs.eureka.dev` (kind, scope, subresources) as the CRD says."""
    import kmock as km

    crd = yaml.safe_load(CRD.read_text())
    names, version = crd["spec"]["names"], crd["spec"]["versions"][0]
    resource = f"{crd['spec']['group']}/{version['name']}/{names['plural']}"
    kmock.resources[resource] = km.ResourceInfo(
        kind=names["kind"],
        singular=names["singular"],
        namespaced=crd["spec"]["scope"] == "Namespaced",
        shortnames=set(names.get("shortNames", [])),
        subresources=set(version.get("subresources", {})),
        verbs={"get", "list", "watch", "create", "patch", "delete"},
    )


def write_kubeconfig(path: Path, server: str, token: str = "test-token") -> Path:
    """A kubeconfig whose current context reaches `server` with a bearer token."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "tester", "namespace": "team-a"},
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path
