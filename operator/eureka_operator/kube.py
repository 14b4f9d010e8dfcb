"""A small Kubernetes client for the operator's handlers, over kopf's own authenticated API calls.

kopf already logs in (service account, kubeconfig), refreshes credentials and retries transient
errors; reusing its request function means one session and one set of credentials. The kopf
internals used here are confined to this module (kopf is pinned in pyproject.toml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kopf._cogs.clients import api, errors
from kopf._cogs.configs.configuration import OperatorSettings

Obj = dict[str, Any]
logger = logging.getLogger("eureka.operator.kube")

# kind -> (apiVersion, plural); every kind the operator touches.
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("v1", "configmaps"),
    "ServiceAccount": ("v1", "serviceaccounts"),
    "Role": ("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
    "RayJob": ("ray.io/v1", "rayjobs"),
    "RLJob": ("eureka.dev/v1alpha1", "rljobs"),
    # Kueue's admission unit for a queued RayJob (v1beta1: served by every Kueue release).
    "Workload": ("kueue.x-k8s.io/v1beta1", "workloads"),
}

# kopf retries a 403 for about a minute (an API server being upgraded answers 403 for a moment);
# a create refused by RBAC or a quota must reach the user sooner: one quick retry, then the
# caller's CreateRefused (a condition on the RLJob) and the reconciler's own retries.
CREATE_BACKOFFS = (1.0,)
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}

NotFound = errors.APINotFoundError
Conflict = errors.APIConflictError
APIError = errors.APIError


class CreateRefused(Exception):
    """The API server refused to create an object (RBAC, a quota, a webhook, validation)."""

    def __init__(self, kind: str, name: str, status: int, message: str) -> None:
        super().__init__(f"creating {kind} {name}: HTTP {status}: {message}")
        self.kind, self.name, self.status, self.message = kind, name, status, message


def url(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    """Namespaced URL of a kind's collection, object or subresource."""
    api_version, plural = KINDS[kind]
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{root}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


class Kube:
    """Create-or-get, get, patch and delete for the kinds in `KINDS`."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings

    async def _call(
        self,
        method: str,
        path: str,
        payload: object | None = None,
        headers: Mapping[str, str] | None = None,
        backoffs: tuple[float, ...] | None = None,
    ) -> Obj:
        response = await api.request(
            method,
            path,
            payload=payload,
            headers=dict(headers) if headers else None,
            settings=self.settings,
            logger=logger,
            backoffs=backoffs,
        )
        async with response:
            data: Obj = await response.json()
        return data

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self._call("get", url(kind, namespace, name))
        except NotFound:
            return None

    async def list_objects(self, kind: str, namespace: str, label_selector: str) -> list[Obj]:
        """The objects of `kind` in `namespace` whose labels match `label_selector`."""
        query = "?labelSelector=" + quote(label_selector, safe="")
        data = await self._call("get", url(kind, namespace) + query)
        wanted = dict(term.split("=", 1) for term in label_selector.split(",") if "=" in term)
        # Checked here too: the selector's `key=value` terms must hold for every item returned.
        return [
            item
            for item in data.get("items") or []
            if all(
                ((item.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in wanted.items()
            )
        ]

    async def create_or_get(self, obj: Mapping[str, Any]) -> tuple[Obj, bool]:
        """(object, created): an existing object of the same name is returned, not replaced."""
        meta = obj["metadata"]
        try:
            path = url(obj["kind"], meta["namespace"])
            return await self._call("post", path, obj, backoffs=CREATE_BACKOFFS), True
        except Conflict:
            existing = await self.get(obj["kind"], meta["namespace"], meta["name"])
            if existing is None:  # deleted between the two calls: let the caller retry
                raise
            return existing, False
        except errors.APIClientError as err:
            # 403 (RBAC, ResourceQuota), 422 / 400 (validation, KubeRay's or Kueue's webhook),
            # 404 (no such namespace): retrying alone will not fix these; the user must know.
            message = err.message or str(err) or type(err).__name__
            raise CreateRefused(obj["kind"], meta["name"], err.status, message) from err

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: Obj | list[Obj],
        *,
        subresource: str | None = None,
    ) -> Obj:
        """Merge patch (a dict) or JSON patch (a list of operations)."""
        headers = JSON_PATCH if isinstance(body, list) else MERGE_PATCH
        return await self._call("patch", url(kind, namespace, name, subresource), body, headers)

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            await self._call("delete", url(kind, namespace, name))
        except NotFound:
            return False
        return True
