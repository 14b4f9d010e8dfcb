"""kmock's Kubernetes emulator, completed where the operator's tests need a real API server's rules.

kmock 0.8 stores objects and streams watch events; it lacks what kopf and the operator lean on:
- `metadata.uid`, `resourceVersion`, `generation` (bumped on spec changes), `creationTimestamp`,
  `generateName` (kopf names its Events that way);
- the status subresource: `PATCH .../status` changes only `status`, the main endpoint never does;
- schema validation on create (RayJobs are checked against KubeRay's real CRD schema: 422);
- KubeRay's admission rules on a RayJob create (tests/kuberay/rules.py: 422, as KubeRay's
  validating webhook answers when it is installed);
- refusals a test asks for (`refuse(...)`: a 403 from RBAC or a quota, a webhook's 422);
- garbage collection: deleting an owner deletes the objects whose ownerReferences name its uid.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrs
import jsonpatch
import jsonschema
import kmock
import yaml
from kmock._internal import dicts, enums, k8s, rendering

from tests.integration.operator.structural import Check, compile_check
from tests.kuberay.rules import rayjob_problems

SERVE = {
    enums.action.LIST: "_serve_list",
    enums.action.WATCH: "_serve_watch",
    enums.action.FETCH: "_serve_fetch",
    enums.action.CREATE: "_serve_create",
    enums.action.UPDATE: "_serve_update",
    enums.action.DELETE: "_serve_delete",
}
# KubeRay's CRDs, vendored with the tests (tests/kuberay/data/README.md says which release).
KUBERAY_CRDS = Path(__file__).resolve().parents[2] / "kuberay" / "data"


@dataclass
class Kind:
    kind: str
    namespaced: bool = True
    status: bool = False
    schema: Mapping[str, Any] | None = None

    @functools.cached_property
    def validator(self) -> jsonschema.Draft4Validator | None:
        # OpenAPI v3.0 schemas are JSON Schema draft 4 (boolean exclusiveMinimum...).
        return None if self.schema is None else jsonschema.Draft4Validator(self.schema)

    @functools.cached_property
    def surely_valid(self) -> Check:
        """A fast check that only ever says yes when jsonschema would (structural.py)."""
        return compile_check(self.schema or {})

    def validate(self, data: Mapping[str, Any]) -> None:
        """Raise jsonschema's first error for `data`, like an API server's 422."""
        if self.validator is not None and not self.surely_valid(data):
            self.validator.validate(data)  # the slow path: jsonschema's verdict and message


def crd_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any]:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return dict(v["schema"]["openAPIV3Schema"])
    raise KeyError(version)


@attrs.define(kw_only=True)
class Emulator(k8s.KubernetesEmulator):
    """A KubernetesEmulator with uids, versions, the status subresource, validation and GC."""

    kinds: dict[kmock.resource, Kind] = attrs.field(factory=dict)
    _rv: Any = attrs.field(factory=lambda: itertools.count(1))
    # resource -> (HTTP status, reason, message) answered to every create until cleared.
    refusals: dict[kmock.resource, tuple[int, str, str]] = attrs.field(factory=dict)

    def refuse(self, resource: str, status: int, reason: str, message: str) -> None:
        """Answer creates of `resource` with an API error (None-like: `allow` undoes it)."""
        self.refusals[kmock.resource(resource)] = (status, reason, message)

    def allow(self, resource: str) -> None:
        self.refusals.pop(kmock.resource(resource), None)

    def register(self, resource: str, kind: Kind) -> None:
        res = kmock.resource(resource)
        self.kinds[res] = kind
        subresources = {"status"} if kind.status else set()
        verbs = {"get", "list", "watch", "create", "patch", "update", "delete"}
        self.resources[res] = kmock.ResourceInfo(
            kind=kind.kind,
            namespaced=kind.namespaced,
            verbs=verbs,
            subresources=subresources,
            singular=kind.kind.lower(),
        )

    async def _handle(self, request: rendering.Request) -> Any:
        kind = self.kinds.get(request.resource) if request.resource is not None else None
        if kind is None or request.action not in SERVE:
            # Discovery and anything unregistered: kmock's own (generic, slower) handling.
            return await super()._handle(request)
        if request.action == enums.action.CREATE:
            self._on_create(request, kind)
        elif request.action == enums.action.UPDATE and request.name:
            self._on_patch(request, kind)
        gone = await self._store(request)
        # kmock matches every request against its reaction DSL, which costs O(requests served);
        # the emulator's own reactions are known, so they are called directly (the benchmark
        # sends tens of thousands of requests). Called here, not handed over as a callable: kmock
        # would inspect its signature on every request.
        serve = getattr(self, SERVE[request.action])
        response = await rendering.Response(payload=serve(request))(request)
        if gone:
            await self._collect_garbage()
        return response

    # kmock's serve_* find the object by scanning every stored object (O(objects) per request,
    # quadratic over a benchmark); an API server looks it up by key, and so do these. Same answers.

    def _stored(self, request: rendering.Request, *, from_body: bool = False) -> Any:
        data = request.data if from_body and isinstance(request.data, dict) else {}
        meta = data.get("metadata") or {}
        key: Any = (
            request.resource,
            request.namespace or meta.get("namespace"),
            request.name or meta.get("name"),
        )
        return self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get)

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        obj = self._stored(request)
        if obj is None or obj.deleted:
            raise k8s.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: rendering.Request) -> Any:
        return self._stored(request, from_body=True).raw  # stored by _store()

    async def _serve_update(self, request: rendering.Request) -> Any:
        return self._stored(request).last.raw  # the last state, also when just deleted

    async def _serve_delete(self, request: rendering.Request) -> Any:
        return self._stored(request).last.raw

    async def _store(self, request: rendering.Request) -> bool:
        """Apply a create, patch or delete to the stored objects and the watch streams.

        Returns whether an object was removed (owner-reference garbage collection is due).
        """
        res, action = request.resource, request.action
        data = request.data if isinstance(request.data, (dict, list)) else {}
        name = request.name or (
            data.get("metadata", {}).get("name") if isinstance(data, dict) else None
        )
        namespace = request.namespace or (
            data.get("metadata", {}).get("namespace") if isinstance(data, dict) else None
        )
        key = (res, namespace, name)
        async with self._lock:
            obj = self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get)
            exists = obj is not None and not obj.deleted
            if action == enums.action.CREATE:
                if exists:
                    raise k8s.KubernetesObjectConflictError()
                if obj is None:
                    self._objects[key] = data
                else:
                    obj.create(data)
                return await self._emit(res, "ADDED", self._objects[key].raw)
            if action not in (enums.action.UPDATE, enums.action.DELETE) or not name:
                return False
            if not exists or obj is None:
                raise k8s.KubernetesObjectNotFoundError()
            if action == enums.action.UPDATE:
                obj.patch(data)
            elif obj.get("metadata", {}).get("finalizers"):
                obj.patch({"metadata": {"deletionTimestamp": now()}})
            else:
                raw = obj.raw
                obj.delete()
                return await self._emit(res, "DELETED", raw, gone=True)
            meta = obj.get("metadata", {})
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                raw = obj.raw
                obj.delete()  # the last finalizer is gone: so is the object
                return await self._emit(res, "DELETED", raw, gone=True)
            return await self._emit(res, "MODIFIED", obj.raw)

    async def _emit(
        self, resource: Any, kind: str, raw: dict[str, Any], gone: bool = False
    ) -> bool:
        await self._buses[resource].put({"type": kind, "object": raw})
        return gone

    def next_rv(self) -> str:
        return str(next(self._rv))

    def _on_create(self, request: rendering.Request, kind: Kind) -> None:
        data = request.data
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(4)
        if kind.namespaced and request.namespace:
            meta.setdefault("namespace", request.namespace)
        refusal = self.refusals.get(request.resource) if request.resource else None
        if refusal is not None:
            raise k8s.KubernetesError(*refusal)
        if kind.validator is not None:
            try:
                kind.validate(data)
            except jsonschema.ValidationError as err:
                path = ".".join(str(p) for p in err.absolute_path)
                message = f"{kind.kind} is invalid: {path}: {err.message}"
                raise k8s.KubernetesError(422, "Invalid", message) from None
        if kind.kind == "RayJob" and (problems := rayjob_problems(data)):
            message = f'admission webhook "vrayjob.kb.io" denied the request: {problems[0]}'
            raise k8s.KubernetesError(422, "Invalid", message)
        if kind.status:
            data.pop("status", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["resourceVersion"] = self.next_rv()
        meta["generation"] = 1

    def _on_patch(self, request: rendering.Request, kind: Kind) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # the emulator answers 404
        old = self.objects[key].raw
        data = request.data
        status_only = request.subresource == "status"
        if isinstance(data, list):
            keep = [op for op in data if op.get("path", "").startswith("/status") == status_only]
            if kind.status or status_only:
                data[:] = keep
            new = jsonpatch.apply_patch(json.loads(json.dumps(old)), data)
        else:
            if status_only:
                status = data.get("status")
                data.clear()
                data["status"] = status
            elif kind.status:
                data.pop("status", None)
            new = dicts.patch_dict(old, data)
        updates = {"resourceVersion": self.next_rv()}
        if new.get("spec") != old.get("spec"):
            updates["generation"] = int(old.get("metadata", {}).get("generation", 1)) + 1
        if isinstance(data, list):
            data.extend(
                {"op": "add", "path": f"/metadata/{k}", "value": v} for k, v in updates.items()
            )
        else:
            data.setdefault("metadata", {}).update(updates)

    async def _collect_garbage(self) -> None:
        """Delete, transitively, every object whose owners are all gone (background cascade)."""
        while True:
            alive = {
                obj.get("metadata", {}).get("uid")
                for obj in self.objects.values()
                if not obj.deleted
            }
            orphans = [
                (key, obj)
                for key, obj in self.objects.items()
                if not obj.deleted
                and (refs := obj.get("metadata", {}).get("ownerReferences"))
                and not any(ref.get("uid") in alive for ref in refs)
            ]
            if not orphans:
                return
            for (resource, _, _), obj in orphans:
                raw = obj.raw
                obj.delete()
                await self._buses[resource].put({"type": "DELETED", "object": raw})

    # --- conveniences for tests -----------------------------------------------------------------

    def obj(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def objs(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        res = kmock.resource(resource)
        return [
            obj.raw
            for (r, ns, _), obj in list(self.objects.items())
            if r == res and not obj.deleted and (namespace is None or ns == namespace)
        ]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RLJOBS = "eureka.dev/v1alpha1/rljobs"
RAYJOBS = "ray.io/v1/rayjobs"
WORKLOADS = "kueue.x-k8s.io/v1beta1/workloads"


@functools.cache
def kuberay_crd(name: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.load((KUBERAY_CRDS / name).read_text(), Loader=yaml.CSafeLoader)
    return crd


def register_all(emu: Emulator, rljob_crd: Mapping[str, Any]) -> None:
    """The kinds the operator reads and writes, with the RLJob and KubeRay RayJob schemas."""
    rayjob_crd = kuberay_crd("ray.io_rayjobs.yaml")
    emu.register(RLJOBS, Kind("RLJob", status=True, schema=crd_schema(rljob_crd, "v1alpha1")))
    emu.register(RAYJOBS, Kind("RayJob", status=True, schema=crd_schema(rayjob_crd, "v1")))
    # kopf's discovery and namespace observers watch these (empty here).
    emu.register(
        "apiextensions.k8s.io/v1/customresourcedefinitions",
        Kind("CustomResourceDefinition", namespaced=False),
    )
    emu.register("v1/namespaces", Kind("Namespace", namespaced=False))
    emu.register("v1/configmaps", Kind("ConfigMap"))
    emu.register("v1/serviceaccounts", Kind("ServiceAccount"))
    emu.register("v1/pods", Kind("Pod", status=True))
    emu.register("v1/events", Kind("Event"))
    emu.register("rbac.authorization.k8s.io/v1/roles", Kind("Role"))
    emu.register("rbac.authorization.k8s.io/v1/rolebindings", Kind("RoleBinding"))
    emu.register(WORKLOADS, Kind("Workload", status=True))


def kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emu", "cluster": {"server": server}}],
        "users": [{"name": "emu", "user": {"token": "test"}}],
        "contexts": [
            {"name": "emu", "context": {"cluster": "emu", "user": "emu", "namespace": "default"}}
        ],
        "current-context": "emu",
    }
    path.write_text(yaml.safe_dump(config))
    return path
