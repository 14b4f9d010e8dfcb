"""Who may write: bearer tokens, checked locally or by the Kubernetes API server.

- `LocalTokenAuth`: one random token generated at start (or given), printed by `eureka serve`.
- `KubeAuth`: the caller's own Kubernetes token, authenticated with a TokenReview and authorised
  with a SubjectAccessReview for the RLJob verb and namespace, so the service grants nobody more
  than their RBAC already does. Answers are cached briefly (keyed by a hash of the token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from eureka_service.backend import BackendError
from eureka_service.kubeclient import KubeClient
from eureka_trainer.config import GROUP, PLURAL


class Unauthenticated(BackendError):
    status = 401


class Forbidden(BackendError):
    status = 403


@dataclass(frozen=True)
class User:
    """An authenticated caller."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


class Authorizer(Protocol):
    """Checks bearer tokens and permissions."""

    async def authenticate(self, token: str | None) -> User:
        """The caller, or `Unauthenticated`."""

    async def authorize(self, user: User, verb: str, namespace: str, name: str | None) -> None:
        """Nothing, or `Forbidden`."""


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def generate_token() -> str:
    return secrets.token_urlsafe(32)


class LocalTokenAuth:
    """One shared secret: whoever holds the printed token may write."""

    def __init__(self, token: str):
        if len(token) < 16:
            raise ValueError("the service token must be at least 16 characters")
        self._token = token.encode()

    async def authenticate(self, token: str | None) -> User:
        if token is None or not hmac.compare_digest(token.encode(), self._token):
            raise Unauthenticated("a valid bearer token is required (printed by `eureka serve`)")
        return User(name="local")

    async def authorize(self, user: User, verb: str, namespace: str, name: str | None) -> None:
        return None


class KubeAuth:
    """TokenReview + SubjectAccessReview against the API server, cached for `ttl` seconds."""

    def __init__(self, client: KubeClient, ttl: float = 30.0, max_entries: int = 1024):
        self.client = client
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, ...], tuple[float, Any]] = OrderedDict()

    def _cached(self, key: tuple[str, ...]) -> Any:
        hit = self._cache.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def _remember(self, key: tuple[str, ...], value: Any) -> None:
        self._cache[key] = (time.monotonic(), value)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    async def authenticate(self, token: str | None) -> User:
        if not token:
            raise Unauthenticated("a bearer token is required (your Kubernetes token)")
        key = ("authn", hashlib.sha256(token.encode()).hexdigest())
        user = self._cached(key)
        if user is None:
            review = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            }
            answer = await self.client.request(
                "POST", "/apis/authentication.k8s.io/v1/tokenreviews", review
            )
            status = (answer or {}).get("status") or {}
            if not status.get("authenticated"):
                raise Unauthenticated("the Kubernetes API server did not accept this token")
            info = status.get("user") or {}
            user = User(
                name=str(info.get("username", "")),
                uid=str(info.get("uid", "")),
                groups=tuple(info.get("groups") or ()),
                extra=dict(info.get("extra") or {}),
            )
            self._remember(key, user)
        assert isinstance(user, User)
        return user

    async def authorize(self, user: User, verb: str, namespace: str, name: str | None) -> None:
        key = ("authz", user.name, user.uid, ",".join(user.groups), verb, namespace, name or "")
        allowed = self._cached(key)
        if allowed is None:
            attributes = {"group": GROUP, "resource": PLURAL, "verb": verb, "namespace": namespace}
            if name:
                attributes["name"] = name
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user.name,
                    "uid": user.uid,
                    "groups": list(user.groups),
                    "extra": user.extra,
                    "resourceAttributes": attributes,
                },
            }
            answer = await self.client.request(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
            )
            allowed = bool(((answer or {}).get("status") or {}).get("allowed"))
            self._remember(key, allowed)
        if not allowed:
            where = f"{namespace}/{name}" if name else namespace
            raise Forbidden(f"{user.name} may not {verb} RLJobs in {where}")
