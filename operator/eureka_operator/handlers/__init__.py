"""kopf handlers, one module per kind; `registry()` builds a registry holding all of them.

Handlers are registered into an explicit registry (not kopf's global one), so tests and the
benchmark can run several operators in one process, e.g. to exercise peering and restarts.
"""

from __future__ import annotations

import kopf

from eureka_operator.handlers import rayjob, rljob, volumes


def registry() -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    rljob.register(reg)
    rayjob.register(reg)
    volumes.register(reg)
    return reg
