"""Which `Host` header values the service answers (a defence against DNS rebinding).

A page on `evil.example` can make its own name resolve to 127.0.0.1 and then read a loopback
service with open reads as same-origin; the browser still sends `Host: evil.example`. Answering
only the names the service is reached by closes that. Loopback names are always allowed (the
usual `eureka serve` and `kubectl port-forward`); a cluster install adds the Service's DNS names
and the Ingress host (charts/eureka passes them as `--allowed-host`). Probes (`/healthz`,
`/readyz`) reveal nothing and are exempt: the kubelet sends the pod IP as Host.
"""

from __future__ import annotations

from collections.abc import Iterable

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def host_name(header: str) -> str:
    """The name of a Host header value, lower-case, without port or IPv6 brackets."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8080
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class HostCheck:
    """Allowed names: loopback, plus `extra` (`*` allows any name, e.g. behind a proxy that checks)."""

    def __init__(self, extra: Iterable[str] = ()):
        names = {host_name(name) for name in extra if name.strip()}
        self.any = "*" in names
        self.names = frozenset(names | set(LOOPBACK_HOSTS))

    def refusal(self, header: str | None, path: str) -> str | None:
        """Why a request is refused (None: it is not)."""
        if self.any or path in EXEMPT_PATHS:
            return None
        if header is None:
            return "a Host header is required"
        name = host_name(header)
        if name in self.names or name.endswith(".localhost"):
            return None
        return (
            f"this service does not answer for host {name!r}; start it with "
            f"--allowed-host {name} when that is the name you reach it by"
        )


def allowed_hosts(bind: str, extra: Iterable[str]) -> list[str]:
    """The names for `eureka serve`: the address it binds (unless a wildcard) and `extra`."""
    names = [name for item in extra for name in item.split(",")]
    if bind not in WILDCARD_BINDS:
        names.append(bind)
    return names
