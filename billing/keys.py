"""Billing's Redis keys, in the style of ``cc_core.keys`` (``cc:{t:<tenant>}:…``: one tenant's
keys share a hash tag, so the Lua that touches them together runs on one Cluster slot).

| key                              | type   | holds                                            |
|----------------------------------|--------|--------------------------------------------------|
| ``cc:{t:<tenant>}:credit``       | hash   | the SQL account as last published: seq,          |
|                                  |        | balance_fen, included_left_s, increment_s,       |
|                                  |        | rate_mobile, rate_landline, low_credit_fen,      |
|                                  |        | low (alert raised), version (bumped on any change |
|                                  |        | here or in ``credit_live``)                      |
| ``cc:{t:<tenant>}:credit:live``  | hash   | call uuid -> "start_ms rate end_ms" of each call |
|                                  |        | billed now or ended and not rated yet (end 0:   |
|                                  |        | still talking)                                   |
| ``cc:{t:<tenant>}:billing:events`` | stream | low_credit / credit_restored alerts            |
"""

from __future__ import annotations

from cc_core.keys import PREFIX


def _tenant(tenant: str) -> str:
    return f"{PREFIX}:{{t:{tenant}}}"


def credit(tenant: str) -> str:
    return f"{_tenant(tenant)}:credit"


def credit_live(tenant: str) -> str:
    return f"{_tenant(tenant)}:credit:live"


def events(tenant: str) -> str:
    return f"{_tenant(tenant)}:billing:events"


EVENTS_MAXLEN = 10_000
