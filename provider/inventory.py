"""The number inventory in the SQL store of business records (``records``, migration 0002):
import from CSV, search, reserve, and every other move of a number's life cycle, each one
transaction with its event (who, when, why).

Two applicants can never hold one number: a move reads the number's ``version`` and writes
only if it is unchanged (``UPDATE … WHERE version = ?``), so of two concurrent reservations one
lands and the other is told the number is taken. A reservation past its ``reserved_until_ms``
is expired by the next move that reads it (it goes back to available, recorded, before anything
else happens).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cc_core.errors import CcCoreError
from provider.grading import SEGMENTS, Grade, NumberError, grade
from provider.lifecycle import NumberState, check
from records.db import Database

CARRIERS = sorted(set(SEGMENTS.values()))
IMPORTER = "import"


class UnknownNumber(CcCoreError):
    error_id = "numbers.unknown"
    exit_code = 2

    def __init__(self, number: str) -> None:
        super().__init__(f"number {number} is not in the inventory: import it first "
                         "(cc-core numbers import FILE) or check the digits")


class NumberTaken(CcCoreError):
    error_id = "numbers.taken"
    exit_code = 2

    def __init__(self, number: str, state: str, holder: str) -> None:
        who = f" by {holder}" if holder else ""
        super().__init__(f"number {number} is {state}{who}: choose another available number "
                         "(cc-core numbers search)")


class InQuarantine(CcCoreError):
    error_id = "numbers.in_quarantine"
    exit_code = 2


# A cancelled number's cooling-off period before another applicant may take it (callers of
# the old enterprise still dial it for a while).
QUARANTINE_DAYS = 90


class BadImport(CcCoreError):
    error_id = "numbers.bad_import"
    exit_code = 2


@dataclass(frozen=True)
class NumberRow:
    number: str
    carrier: str
    grade: str
    points: int
    state: NumberState
    tenant: str
    holder: str
    reserved_until_ms: int | None
    version: int
    updated_ms: int


@dataclass(frozen=True)
class Event:
    number: str
    version: int
    from_state: str
    to_state: str
    actor: str
    reason: str
    at_ms: int


@dataclass
class ImportSummary:
    accepted: int = 0
    duplicate: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)   # line, raw, reason

    def table(self) -> str:
        lines = [f"accepted {self.accepted}, duplicate {self.duplicate}, "
                 f"invalid {len(self.invalid)}"]
        lines += [f"  line {n}: {raw!r}: {why}" for n, raw, why in self.invalid]
        return "\n".join(lines)


_COLUMNS = ("number, carrier, grade, points, state, tenant, holder, reserved_until_ms, "
            "version, updated_ms")


def _row(r: tuple[Any, ...]) -> NumberRow:
    return NumberRow(r[0], r[1], r[2], int(r[3]), NumberState(r[4]), r[5], r[6],
                     None if r[7] is None else int(r[7]), int(r[8]), int(r[9]))


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without a BOM) or GBK, as spreadsheets in China save CSV."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadImport(f"{path}: neither UTF-8 nor GBK text; save the file as CSV (UTF-8)")


def read_csv(path: Path) -> list[tuple[int, str]]:
    """(line, first column) of each data row; a header row (number / 号码) is skipped."""
    try:
        text = _decode(path.read_bytes(), path)
    except OSError as exc:
        raise BadImport(f"cannot read {path}: {exc.strerror}") from None
    out = []
    for n, cols in enumerate(csv.reader(io.StringIO(text)), 1):
        if not cols or not "".join(cols).strip():
            continue
        first = cols[0].strip()
        if n == 1 and first.lower() in ("number", "numbers", "号码", "400号码"):
            continue
        out.append((n, first))
    return out


def import_numbers(db: Database, path: Path, *, now_ms: int, actor: str = IMPORTER,
                   progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Add the file's numbers as available, graded; duplicates (in the file or already in
    the inventory) and invalid rows are counted, each invalid one with its reason. One
    transaction: a failure writes nothing."""
    rows = read_csv(path)
    summary = ImportSummary()
    seen: set[str] = set()
    with db.transaction() as tx:
        for i, (line, raw) in enumerate(rows, 1):
            try:
                g = grade(raw)
            except NumberError as exc:
                summary.invalid.append((line, raw, str(exc)))
                continue
            if g.number in seen:
                summary.duplicate += 1
                continue
            seen.add(g.number)
            tx.execute(
                f"INSERT INTO numbers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, '', '', NULL, 1, ?) "
                "ON CONFLICT (number) DO NOTHING",
                (g.number, g.carrier, g.grade.value, g.points, NumberState.AVAILABLE.value,
                 now_ms))
            if tx.rowcount == 0:
                summary.duplicate += 1
                continue
            tx.execute("INSERT INTO number_events (number, version, from_state, to_state, "
                       "actor, reason, at_ms) VALUES (?, 1, '', ?, ?, ?, ?)",
                       (g.number, NumberState.AVAILABLE.value, actor, f"imported from {path.name}",
                        now_ms))
            summary.accepted += 1
            if progress is not None:
                progress(i, len(rows))
    return summary


def glob_to_like(pattern: str) -> str:
    """``*8888`` -> ``%8888``: ``*`` any digits, ``?`` one digit; anything else must be a
    digit, so no LIKE wildcard slips in."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch.isdigit() and ch.isascii():
            out.append(ch)
        else:
            raise BadImport(f"pattern {pattern!r}: use digits, * (any digits) and ? (one "
                            "digit), e.g. *8888 or 4008??6666")
    return "".join(out)


def search(db: Database, *, carrier: str | None = None, pattern: str | None = None,
           grades: Iterable[Grade] = (), state: NumberState = NumberState.AVAILABLE,
           limit: int = 50) -> list[NumberRow]:
    """Numbers on offer, best grade first (most points), then in number order."""
    where, args = ["state = ?"], [state.value]
    if carrier:
        if carrier not in CARRIERS:
            raise BadImport(f"carrier {carrier!r}: one of {', '.join(CARRIERS)}")
        where.append("carrier = ?")
        args.append(carrier)
    if pattern:
        where.append("number LIKE ?")
        args.append(glob_to_like(pattern))
    wanted = [g.value for g in grades]
    if wanted:
        where.append("grade IN (" + ", ".join("?" for _ in wanted) + ")")
        args.extend(wanted)
    with db.transaction(write=False) as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM numbers WHERE {' AND '.join(where)} "
                          "ORDER BY points DESC, number LIMIT ?", (*args, int(limit))).fetchall()
    return [_row(r) for r in rows]


def get(db: Database, number: str) -> NumberRow:
    with db.transaction(write=False) as tx:
        r = tx.execute(f"SELECT {_COLUMNS} FROM numbers WHERE number = ?", (number,)).fetchone()
    if r is None:
        raise UnknownNumber(number)
    return _row(r)


def history(db: Database, number: str) -> list[Event]:
    with db.transaction(write=False) as tx:
        rows = tx.execute("SELECT number, version, from_state, to_state, actor, reason, at_ms "
                          "FROM number_events WHERE number = ? ORDER BY version",
                          (number,)).fetchall()
    return [Event(r[0], int(r[1]), r[2], r[3], r[4], r[5], int(r[6])) for r in rows]


def move_in(tx: Any, row: NumberRow, target: NumberState, *, actor: str, reason: str,
          now_ms: int, tenant: str | None = None, holder: str = "",
          reserved_until_ms: int | None = None) -> NumberRow:
    check(row.number, row.state, target)
    version = row.version + 1
    new_tenant = row.tenant if tenant is None else tenant
    if target is NumberState.AVAILABLE:
        new_tenant, holder = "", ""
    tx.execute("UPDATE numbers SET state = ?, tenant = ?, holder = ?, reserved_until_ms = ?, "
               "version = ?, updated_ms = ? WHERE number = ? AND version = ?",
               (target.value, new_tenant, holder, reserved_until_ms, version, now_ms,
                row.number, row.version))
    if tx.rowcount != 1:
        fresh = tx.execute(f"SELECT {_COLUMNS} FROM numbers WHERE number = ?",
                           (row.number,)).fetchone()
        now = _row(fresh) if fresh else row
        raise NumberTaken(row.number, now.state.value, now.holder)
    tx.execute("INSERT INTO number_events (number, version, from_state, to_state, actor, "
               "reason, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (row.number, version, row.state.value, target.value, actor, reason, now_ms))
    return NumberRow(row.number, row.carrier, row.grade, row.points, target, new_tenant,
                     holder, reserved_until_ms, version, now_ms)


def current_in(tx: Any, number: str, now_ms: int) -> NumberRow:
    r = tx.execute(f"SELECT {_COLUMNS} FROM numbers WHERE number = ?", (number,)).fetchone()
    if r is None:
        raise UnknownNumber(number)
    row = _row(r)
    if (row.state is NumberState.RESERVED and row.reserved_until_ms is not None
            and row.reserved_until_ms <= now_ms):
        row = move_in(tx, row, NumberState.AVAILABLE, actor="system",
                    reason=f"reservation by {row.holder} expired", now_ms=now_ms)
    return row


def reserve(db: Database, number: str, *, holder: str, ttl_s: int, now_ms: int) -> NumberRow:
    """Hold an available number for ``holder`` for ``ttl_s``; NumberTaken when another holds
    it (or took it a moment ago)."""
    if ttl_s <= 0:
        raise BadImport(f"a reservation of {ttl_s} s: give a positive time, e.g. 72h")
    with db.transaction() as tx:
        row = current_in(tx, number, now_ms)
        if row.state is not NumberState.AVAILABLE:
            raise NumberTaken(number, row.state.value, row.holder)
        return move_in(tx, row, NumberState.RESERVED, actor=holder, reason="reserved",
                     now_ms=now_ms, holder=holder, reserved_until_ms=now_ms + ttl_s * 1000)


def move(db: Database, number: str, target: NumberState, *, actor: str, reason: str,
         now_ms: int, tenant: str | None = None) -> NumberRow:
    """Any other move of the life cycle (provider.lifecycle says which are allowed)."""
    with db.transaction() as tx:
        row = current_in(tx, number, now_ms)
        if (row.state is NumberState.QUARANTINE and target is NumberState.AVAILABLE
                and now_ms < row.updated_ms + QUARANTINE_DAYS * 86_400_000):
            until = datetime.fromtimestamp((row.updated_ms + QUARANTINE_DAYS * 86_400_000)
                                           / 1000, ZoneInfo("Asia/Shanghai"))
            raise InQuarantine(f"number {number} is in quarantine until {until:%Y-%m-%d %H:%M} "
                               f"(a cancelled number cools off {QUARANTINE_DAYS} days before "
                               "it is offered again)")
        return move_in(tx, row, target, actor=actor, reason=reason, now_ms=now_ms,
                     tenant=tenant, holder=row.holder if target is not NumberState.AVAILABLE
                     else "", reserved_until_ms=row.reserved_until_ms
                     if target is NumberState.RESERVED else None)
