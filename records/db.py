"""One SQL database, SQLite or PostgreSQL, behind the same few calls.

``open_database(target)``: a PostgreSQL DSN (``postgresql://…``, ``postgres://…`` or libpq
``key=value`` words) opens PostgreSQL through psycopg 3; anything else is a SQLite file path
(``sqlite:///path`` accepted too). SQL is written once, in the subset both speak (``TEXT``,
``BIGINT``, ``INSERT … ON CONFLICT DO NOTHING``), with ``?`` placeholders that the PostgreSQL
side turns into ``%s``: so SQL given here holds no literal ``?`` or ``%``.

Every write goes through ``transaction()``: all of it commits, or none of it does. SQLite runs
in WAL mode with a busy timeout, so several processes (workers, ``cc-core cdr consume``, an
export) share one file; its write transactions start ``IMMEDIATE`` so two writers queue rather
than deadlock on a lock upgrade.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from records.errors import StoreUnavailable

Dialect = Literal["sqlite", "postgresql"]

SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
_PG_URL = re.compile(r"^postgres(ql)?://", re.I)
_PG_WORDS = re.compile(r"(^|\s)(host|hostaddr|dbname|user|port)=", re.I)


def is_postgresql(target: str) -> bool:
    return bool(_PG_URL.match(target) or _PG_WORDS.search(target))


def describe(target: str) -> str:
    """``target`` fit for a message or a log line: a DSN's password is never shown."""
    if not is_postgresql(target):
        return f"SQLite file {sqlite_path(target)}"
    hidden = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", target)
    hidden = re.sub(r"(password\s*=\s*)\S+", r"\1***", hidden, flags=re.I)
    return f"PostgreSQL {hidden}"


def sqlite_path(target: str) -> str:
    return target[len("sqlite:///"):] if target.startswith("sqlite:///") else target


class Tx:
    """The statements of one open transaction."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cur = cursor
        self._dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        self._cur.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Runs ``sql`` once per row; how many rows it changed in all."""
        if not rows:
            return 0
        changed = 0
        # One statement per row keeps the count exact on both drivers (executemany's
        # rowcount differs between them); it is one transaction either way.
        for row in rows:
            self._cur.execute(self._sql(sql), tuple(row))
            changed += max(0, self._cur.rowcount)
        return changed

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cur.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed (both drivers agree for a single statement)."""
        return max(0, self._cur.rowcount)

    @property
    def columns(self) -> list[str]:
        return [d[0] for d in (self._cur.description or ())]


class Database:
    """One connection to the store, used by one greenlet or thread at a time."""

    def __init__(self, target: str, must_exist: bool = False) -> None:
        self.target = target
        self.must_exist = must_exist
        self.dialect: Dialect = "postgresql" if is_postgresql(target) else "sqlite"
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"Database({describe(self.target)})"

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        if self.dialect == "postgresql":
            import psycopg

            try:
                self._conn = psycopg.connect(self.target, connect_timeout=PG_CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                raise StoreUnavailable(
                    f"cannot connect to {describe(self.target)}: {str(exc).strip()}; check the "
                    "DSN (--db, CC_RECORDS_DB or records.db in the config) and that the server "
                    "runs") from exc
        else:
            path = Path(sqlite_path(self.target))
            if self.must_exist and not path.is_file():
                raise StoreUnavailable(
                    f"no record store at {path}: nothing was stored there yet; run `cc-core db "
                    "migrate` (or `cc-core cdr consume`) with this --db, or point --db / "
                    "CC_RECORDS_DB at the store in use")
            if not path.parent.is_dir():
                raise StoreUnavailable(
                    f"cannot open {describe(self.target)}: folder {path.parent} does not exist; "
                    "create it or point --db / CC_RECORDS_DB elsewhere")
            try:
                conn = sqlite3.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open {describe(self.target)}: {exc}") from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        """Commits when the block ends, rolls back when it raises. ``write=False`` for a
        block that only reads: on SQLite it then never waits for a writer's lock."""
        conn = self._connect()
        if self.dialect == "postgresql":
            with conn.transaction(), conn.cursor() as cur:
                yield Tx(cur, self.dialect)
            return
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Tx(cur, self.dialect)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(target: str, must_exist: bool = False) -> Database:
    """The store at ``target``; ``must_exist``: a SQLite file is never created (readers)."""
    if not target:
        raise StoreUnavailable("no record store configured: give --db PATH|DSN, CC_RECORDS_DB "
                               "or records.db in the config")
    return Database(target, must_exist=must_exist)


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a store operation may raise for a fault of the database (not a bug)."""
    errors: list[type[BaseException]] = [sqlite3.Error, StoreUnavailable]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(errors)
