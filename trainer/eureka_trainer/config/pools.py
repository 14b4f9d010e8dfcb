"""Names both sides of the cluster boundary agree on: the Ray worker groups and the custom Ray
resource each group's nodes advertise.

The operator declares `pool_resource(group)` on every node of a worker group; the trainer's
placement requests it, so rollout engines land on rollout nodes and learners on learner nodes.
Kept here (no heavy imports) because both `eureka_operator` and the trainer driver need it.
"""

from __future__ import annotations

# How many units of its pool resource each node advertises: enough that every actor on the node
# can request a fraction without running out, whatever the node's GPU count.
POOL_RESOURCE_UNITS = 1000


def pool_resource(group: str) -> str:
    """The custom Ray resource advertised by the nodes of worker group `group` ("eureka_rollout")."""
    return f"eureka_{group}"
