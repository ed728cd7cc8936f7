"""Redis key names of the call-flow state, in one place and one template style.

Tenant keys share the hash tag ``{t:<tenant>}`` so that a tenant's keys live in one
Redis Cluster slot and multi-key scripts run unchanged on a cluster.
"""

from __future__ import annotations

CALL_TTL_S = 6 * 3600  # longer than any call; a crashed worker's leftovers expire


def call(tenant: str, call_uuid: str) -> str:
    """Hash of one live call's progress through the call flow."""
    return f"{{t:{tenant}}}:call:{call_uuid}"
