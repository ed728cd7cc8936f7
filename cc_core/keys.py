"""Redis key names of the product, in one place and one style: ``cc:{<tag>}:<name>``.

Every key carries exactly one hash tag, so the keys a Lua script touches together live in one
Redis Cluster slot and the scripts run unchanged on a cluster: ``{t:<tenant>}`` for a tenant's
keys. (``esl_handlers.keys`` follows the same style for the ESL library's own keys: node leases
``{n:<node>}`` and worker heartbeats ``{w:<worker>}``.) Tenant ids are restricted by
``cc_core.tenants.model.TENANT_ID`` to ``[a-z0-9_-]``: no braces or colons.
"""

from __future__ import annotations

PREFIX = "cc"
CALL_TTL_S = 6 * 3600  # longer than any call; a crashed worker's leftovers expire


def _tenant(tenant: str) -> str:
    return f"{PREFIX}:{{t:{tenant}}}"


def call(tenant: str, call_uuid: str) -> str:
    """Hash of one live call: its state, holder and data (``cc_core.flow.record``)."""
    return f"{_tenant(tenant)}:call:{call_uuid}"


def calls_stream(tenant: str) -> str:
    """Stream of the tenant's finished calls' summaries (``cc_core.flow.hangup``)."""
    return f"{_tenant(tenant)}:calls"


def calls_stream_pattern() -> str:
    """SCAN pattern matching every tenant's ``calls_stream`` (the call-record consumer)."""
    return f"{PREFIX}:{{t:*}}:calls"


def calls_tenants() -> str:
    """Set of the tenants whose ``calls_stream`` exists: added to with each summary, so the
    call-record consumer finds a tenant's first call at once, without a SCAN."""
    return f"{PREFIX}:{{g}}:calls:tenants"


# Consumer group of the call-record consumer (records.consumer) on every ``calls_stream``.
CDR_GROUP = "cdr"


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
    return f"{PREFIX}:{{g}}:directory"


def directory_version() -> str:
    return f"{PREFIX}:{{g}}:directory:version"


def config_seq() -> str:
    return f"{PREFIX}:{{g}}:config:seq"


def tenant_config(tenant: str, version: int) -> str:
    return f"{_tenant(tenant)}:config:v{version}"


def tenant_config_versions(tenant: str) -> str:
    return f"{_tenant(tenant)}:config:versions"


# -- the HTTP API (cc_core.api) ---------------------------------------------------------------
#
# | key                          | type | holds                                                |
# |------------------------------|------|------------------------------------------------------|
# | ``cc:{t:<tenant>}:api:tokens`` | hash | SHA-256 (hex) of a token -> msgpack: id, role, agent, |
# |                              |      | label, created_ms; the token itself is never stored  |


def api_tokens(tenant: str) -> str:
    return f"{_tenant(tenant)}:api:tokens"


# -- the ACD (acd/) ---------------------------------------------------------------------------
#
# Every ACD key of a tenant carries ``{t:<tenant>}``: the dispatch scripts touch one tenant's
# agents, queues and callers together, in one Cluster slot. Values are strings/ints in hashes
# (read field by field inside Lua); payloads on the stream are msgpack.
#
# | key                                   | type   | holds                                   |
# |---------------------------------------|--------|-----------------------------------------|
# | ``cc:{t:T}:acd:agents``               | set    | the tenant's agent ids                  |
# | ``cc:{t:T}:acd:agent:<id>``           | hash   | one agent: config fields + live status, |
# |                                       |        | state, reservation, daily counters      |
# | ``cc:{t:T}:acd:agent:<id>:queues``    | zset   | the agent's queues, score level*10^5+pos |
# | ``cc:{t:T}:acd:queues``               | set    | the tenant's queue names                |
# | ``cc:{t:T}:acd:queue:<q>``            | hash   | one queue's settings and counters       |
# | ``cc:{t:T}:acd:queue:<q>:tiers``      | zset   | agent ids, score level*10^5+position    |
# | ``cc:{t:T}:acd:queue:<q>:waiting``    | zset   | waiting callers' uuids by rank          |
# | ``cc:{t:T}:acd:queue:<q>:idle``       | zset   | free agents, score level*10^13 + idle   |
# |                                       |        | since (ms): longest-idle dispatch       |
# | ``cc:{t:T}:acd:member:<uuid>``        | hash   | one caller in a queue                   |
# | ``cc:{t:T}:acd:timers``               | zset   | "kind|id" due at score (ms): wrap-up     |
# |                                       |        | ends, delays, reservation deadlines     |
# | ``cc:{t:T}:acd:seq``                  | string | INCR: reservation tokens                |
# | ``cc:{t:T}:acd:events``               | stream | callcenter::info-style queue events     |

# PUBLISH: an on-demand recording start or stop (msgpack tenant, call, action, by) for the
# worker holding the call (cc_core.api.recordings -> recordings.recorder via cc_core.app).
RECORDING_CHANNEL = "cc:recording"
ACD_CHANNEL = "cc:acd"  # PUBLISH: offers for another worker, "queue has a free agent" nudges


def acd_agents(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:agents"


def acd_agent(tenant: str, agent: str) -> str:
    return f"{_tenant(tenant)}:acd:agent:{agent}"


def acd_agent_queues(tenant: str, agent: str) -> str:
    return f"{_tenant(tenant)}:acd:agent:{agent}:queues"


def acd_queues(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:queues"


def acd_queue(tenant: str, queue: str) -> str:
    return f"{_tenant(tenant)}:acd:queue:{queue}"


def acd_queue_tiers(tenant: str, queue: str) -> str:
    return f"{_tenant(tenant)}:acd:queue:{queue}:tiers"


def acd_queue_idle(tenant: str, queue: str) -> str:
    return f"{_tenant(tenant)}:acd:queue:{queue}:idle"


def acd_queue_waiting(tenant: str, queue: str) -> str:
    return f"{_tenant(tenant)}:acd:queue:{queue}:waiting"


def acd_member(tenant: str, call_uuid: str) -> str:
    return f"{_tenant(tenant)}:acd:member:{call_uuid}"


def acd_timers(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:timers"


def acd_seq(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:seq"


def acd_events(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:events"


def acd_prefix(tenant: str) -> str:
    """What the scripts prepend to build an agent/queue/member key they only learn inside
    Redis (an agent id read from a tier): ``<prefix>:agent:<id>`` is ``acd_agent``, so keys
    built in Lua stay in the tenant's slot."""
    return f"{_tenant(tenant)}:acd"


# Added with the ACD's Lua core (acd/store.py):
#
# | key                                        | type   | holds                              |
# |--------------------------------------------|--------|------------------------------------|
# | ``cc:{t:T}:acd:free``                      | set    | agents free to offer right now     |
# | ``cc:{t:T}:acd:available``                 | set    | agents Available (On Demand)       |
# | ``cc:{t:T}:acd:tenant``                    | hash   | tenant-wide ACD settings (timezone)|
# | ``cc:{t:T}:acd:queue:<q>:abandoned:<num>`` | string | "score|wait base" of a caller who  |
# |                                            |        | abandoned, kept for a resume (PX)  |
# | ``cc:{t:T}:acd:queue:<q>:callbacks``       | zset   | queued callbacks, score = expiry ms|
# | ``cc:{t:T}:acd:offer:<token>:run``         | string | the worker running an offer heard  |
# |                                            |        | by several (callbacks; PX)         |


def acd_free(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:free"


def acd_available(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:available"


def acd_tenant(tenant: str) -> str:
    return f"{_tenant(tenant)}:acd:tenant"


def acd_abandoned(tenant: str, queue: str, caller: str) -> str:
    return f"{_tenant(tenant)}:acd:queue:{queue}:abandoned:{caller}"


def acd_queue_callbacks(tenant: str, queue: str) -> str:
    """Zset: the queue's queued callbacks (member uuids), score = when their member hash
    expires (ms); trimmed by enqueue.lua, read by the KPI collector (``acd.kpi``)."""
    return f"{_tenant(tenant)}:acd:queue:{queue}:callbacks"


def acd_offer_claim(tenant: str, token: str) -> str:
    return f"{_tenant(tenant)}:acd:offer:{token}:run"


# | ``cc:{t:T}:month:<yyyymm>:calls``     | string | INCR: calls the tenant started that month   |
# | ``cc:{t:T}:month:<yyyymm>:cost_fen``  | string | SET by billing: the month's committed cost  |
# | ``cc:{t:T}:month:<yyyymm>:capped``    | hash   | caps already reported this month (alert)   |
def tenant_month_calls(tenant: str, month: str) -> str:
    return f"{_tenant(tenant)}:month:{month}:calls"


def tenant_month_cost(tenant: str, month: str) -> str:
    return f"{_tenant(tenant)}:month:{month}:cost_fen"


def tenant_month_capped(tenant: str, month: str) -> str:
    return f"{_tenant(tenant)}:month:{month}:capped"


# Billing's live credit view (``billing.credit``), published from the SQL store:
# | ``cc:{t:T}:credit``          | hash   | the account as last published: seq, balance_fen,      |
# |                              |        | included_left_s, increment_s, rate_mobile,            |
# |                              |        | rate_landline, low_credit_fen, low (alert raised),    |
# |                              |        | version (bumped on any change here or in credit:live) |
# | ``cc:{t:T}:credit:live``     | hash   | call uuid -> "start_ms rate end_ms" of each call      |
# |                              |        | billed now or ended and not rated yet (end 0: talking)|
# | ``cc:{t:T}:billing:events``  | stream | low_credit / credit_restored alerts                   |
BILLING_EVENTS_MAXLEN = 10_000


def credit(tenant: str) -> str:
    return f"{_tenant(tenant)}:credit"


def credit_live(tenant: str) -> str:
    return f"{_tenant(tenant)}:credit:live"


def billing_events(tenant: str) -> str:
    return f"{_tenant(tenant)}:billing:events"
