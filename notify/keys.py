"""Redis keys of the missed-call notices (style of ``cc_core.keys``; one ``{g}`` tag: the
delivery queue is shared by every tenant and claimed atomically by one script)."""

from __future__ import annotations

from cc_core.keys import PREFIX

#: Consumer group of the notifier on every tenant's calls stream.
NOTIFY_GROUP = "notify"


def due() -> str:
    """zset: delivery id -> when it is due (ms); a claimed one is pushed to its claim's end."""
    return f"{PREFIX}:{{g}}:notify:due"


def pending() -> str:
    """hash: delivery id -> msgpack {tenant, body, attempts}."""
    return f"{PREFIX}:{{g}}:notify:pending"
