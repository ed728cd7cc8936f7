"""Redis key names of the call-flow state, in one place and one template style.

Tenant keys share the hash tag ``{t:<tenant>}`` so that a tenant's keys live in one
Redis Cluster slot and multi-key scripts run unchanged on a cluster.
"""

from __future__ import annotations

CALL_TTL_S = 6 * 3600  # longer than any call; a crashed worker's leftovers expire


def call(tenant: str, call_uuid: str) -> str:
    """Hash of one live call's progress through the call flow."""
    return f"{{t:{tenant}}}:call:{call_uuid}"


# -- tenant configuration (cc_core.tenants.store) ------------------------------------------
#
# | key                              | type   | holds                                         |
# |----------------------------------|--------|-----------------------------------------------|
# | ``cc:{g}:directory``             | string | msgpack: the applied version, tenant id ->    |
# |                                  |        | blob version, 400 number -> tenant id, and the |
# |                                  |        | global config; replaced by one SET per apply  |
# | ``cc:{g}:directory:version``     | string | that version alone, so a worker polls 1 int   |
# | ``cc:{g}:config:seq``            | string | INCR counter handing out versions             |
# | ``cc:{t:<tenant>}:config:v<N>``  | string | msgpack of one tenant's config, immutable     |
# | ``cc:{t:<tenant>}:config:versions`` | zset | the blob versions kept (score = version)     |
#
# The directory keys share ``{g}`` so the script that swaps them runs on one Cluster slot;
# a tenant's blobs share the tenant's tag. Tenant ids are ``[a-z0-9_-]`` (model.TENANT_ID), so
# they cannot contain braces or colons.

CONFIG_CHANNEL = "cc:config"  # PUBLISH <version> after each apply


def directory() -> str:
    return "cc:{g}:directory"


def directory_version() -> str:
    return "cc:{g}:directory:version"


def config_seq() -> str:
    return "cc:{g}:config:seq"


def tenant_config(tenant: str, version: int) -> str:
    return f"cc:{{t:{tenant}}}:config:v{version}"


def tenant_config_versions(tenant: str) -> str:
    return f"cc:{{t:{tenant}}}:config:versions"
