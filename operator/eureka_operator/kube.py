"""A small Kubernetes client for the operator's handlers, over kopf's own authenticated API calls.

kopf already logs in (service account, kubeconfig), refreshes credentials and retries transient
errors; reusing its request function means one session and one set of credentials. The kopf
internals used here are confined to this module (kopf is pinned in pyproject.toml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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
}

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}

NotFound = errors.APINotFoundError
Conflict = errors.APIConflictError
APIError = errors.APIError


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
    ) -> Obj:
        response = await api.request(
            method,
            path,
            payload=payload,
            headers=dict(headers) if headers else None,
            settings=self.settings,
            logger=logger,
        )
        async with response:
            data: Obj = await response.json()
        return data

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self._call("get", url(kind, namespace, name))
        except NotFound:
            return None

    async def create_or_get(self, obj: Mapping[str, Any]) -> tuple[Obj, bool]:
        """(object, created): an existing object of the same name is returned, not replaced."""
        meta = obj["metadata"]
        try:
            return await self._call("post", url(obj["kind"], meta["namespace"]), payload=obj), True
        except Conflict:
            existing = await self.get(obj["kind"], meta["namespace"], meta["name"])
            if existing is None:  # deleted between the two calls: let the caller retry
                raise
            return existing, False

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
