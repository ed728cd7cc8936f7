"""The recordings index: the ``recordings`` table (migration 0005).

Rows come from the call summaries the record consumer stores (``records.consumer``), in the
same transaction as the call record, so an index row and its record's ``recording_path`` are
written together or not at all; like the records, a call already indexed is left as it is.

Every read takes the tenant: a recording of another tenant is "not found", never "forbidden".
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass, fields
from typing import Any

from recordings.layout import NAME
from records.db import Tx


@dataclass(frozen=True)
class Recording:
    """One row of ``recordings``; field order is column order."""

    call_uuid: str
    tenant: str
    name: str
    day: str
    agent: str
    caller: str
    dnis: str
    queue: str
    channels: int
    started_by: str
    started_ms: int
    stopped_ms: int | None
    duration_ms: int | None
    size: int | None
    completion: str
    call_end_ms: int | None
    stored_ms: int

    @property
    def finished(self) -> bool:
        return self.stopped_ms is not None


COLUMNS = [f.name for f in fields(Recording)]
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM recordings"
_INSERT = (f"INSERT INTO recordings ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (call_uuid) DO NOTHING")


def from_summary(summary: dict[str, Any], end_ms: int | None = None,
                 stored_ms: int | None = None) -> Recording | None:
    """The index row of a call's summary; None when the call was not recorded (or what the
    summary says of it is not a recording of this layout)."""
    rec = summary.get("recording") or {}
    name = str(rec.get("name") or "")
    found = NAME.fullmatch(name)
    if not rec.get("started_ms") or found is None or found["uuid"] != summary.get("uuid") \
            or found["tenant"] != summary.get("tenant"):
        return None

    def num(key: str) -> int | None:
        try:
            value = int(rec.get(key) or 0)
        except (TypeError, ValueError):
            return None
        return value or None

    return Recording(
        call_uuid=str(summary["uuid"]), tenant=str(summary["tenant"]), name=name,
        day=f"{found['y']}-{found['m']}-{found['d']}", agent=str(summary.get("agent") or ""),
        caller=str(summary.get("caller") or ""), dnis=str(summary.get("dnis") or ""),
        queue=str(summary.get("queue") or ""), channels=2 if rec.get("stereo") else 1,
        started_by=str(rec.get("by") or ""), started_ms=int(rec["started_ms"]),
        stopped_ms=num("stopped_ms"), duration_ms=num("ms"), size=num("size"),
        completion=str(rec.get("cause") or ""), call_end_ms=end_ms,
        stored_ms=stored_ms if stored_ms is not None else int(time.time() * 1000))


def store(tx: Tx, rows: list[Recording]) -> int:
    return tx.executemany(_INSERT, [astuple(r) for r in rows])


def _rows(tx: Tx) -> list[Recording]:
    return [Recording(*r) for r in tx.fetchall()]


def get(tx: Tx, tenant: str, call_uuid: str) -> Recording | None:
    tx.execute(f"{_SELECT} WHERE tenant = ? AND call_uuid = ?", (tenant, call_uuid))
    rows = _rows(tx)
    return rows[0] if rows else None


def search(tx: Tx, tenant: str, *, agent: str | None = None, caller: str | None = None,
           day: str | None = None, from_ms: int | None = None, to_ms: int | None = None,
           limit: int = 100) -> list[Recording]:
    """One tenant's recordings, newest first, by agent, caller number, day or period."""
    where: list[str] = ["tenant = ?"]
    args: list[object] = [tenant]
    for column, value in (("agent", agent), ("caller", caller), ("day", day)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if from_ms is not None:
        where.append("started_ms >= ?")
        args.append(from_ms)
    if to_ms is not None:
        where.append("started_ms < ?")
        args.append(to_ms)
    tx.execute(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY started_ms DESC, call_uuid "
               f"LIMIT {int(limit)}", args)
    return _rows(tx)


def all_rows(tx: Tx, tenant: str | None = None) -> list[Recording]:
    if tenant:
        tx.execute(f"{_SELECT} WHERE tenant = ? ORDER BY started_ms", (tenant,))
    else:
        tx.execute(f"{_SELECT} ORDER BY tenant, started_ms")
    return _rows(tx)


def delete(tx: Tx, tenant: str, call_uuid: str) -> int:
    tx.execute("DELETE FROM recordings WHERE tenant = ? AND call_uuid = ?", (tenant, call_uuid))
    return tx.rowcount
