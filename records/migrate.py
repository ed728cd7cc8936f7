"""Versioned schema migrations: ``cc-core db migrate``.

Every table of the store comes from a numbered file in ``records/migrations/``:
``0001_call_records.sql``, ``0002_….sql``… applied in order, each once, each in its own
transaction together with its row in ``schema_version`` (version, name, SHA-256 of the text,
when). Running it again applies nothing; two runs at once queue on a lock (PostgreSQL: an
advisory lock; SQLite: the write lock), and the second finds the work done.

To add tables (the number business of issue 12, billing…): add the next number, never edit a
file that shipped: a changed file of an applied version is refused (its checksum no longer
matches), since the databases that ran the old text would silently differ from new ones. A
file may have a dialect variant, ``NNNN_name.postgresql.sql`` or ``NNNN_name.sqlite.sql``,
used instead of the plain one on that store, for the rare statement the two do not share.

Statements in a file end with ``;`` at the end of a line; ``--`` starts a comment line. No
string literal may hold ``;`` at a line's end, ``?`` or ``%`` (``records.db``).

A migration whose data cannot move in portable SQL (a time zone, a JSON list) names a Python
step in ``DATA_STEPS``: it runs after that file's statements, in the same transaction, so the
version is recorded with its data moved or not at all.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module, resources
from typing import Any

from records.db import Database, driver_errors
from records.errors import MigrationError, StoreUnavailable

_FILE = re.compile(r"^(?P<num>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>sqlite|postgresql))?"
                   r"\.sql$")
# Any number, stable across releases: the PostgreSQL advisory lock of `db migrate`.
_PG_LOCK_KEY = 0x6363_7265_6364  # "ccrecd"

# version -> "module:function" called with the migration's transaction (a ``records.db.Tx``).
DATA_STEPS: dict[int, str] = {7: "billing.upgrade:upgrade_0007"}


def _data_step(version: int) -> Callable[[Any], None] | None:
    target = DATA_STEPS.get(version)
    if target is None:
        return None
    module, _, name = target.partition(":")
    step: Callable[[Any], None] = getattr(import_module(module), name)
    return step


_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_ms BIGINT NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        out, current = [], []
        for line in lines:
            current.append(line)
            if line.rstrip().endswith(";"):
                stmt = "\n".join(current).strip().rstrip(";").strip()
                if stmt:
                    out.append(stmt)
                current = []
        rest = "\n".join(current).strip()
        if rest:
            raise MigrationError(f"migration {self.version:04d}_{self.name}: the text after the "
                                 f"last ';' is not a complete statement: {rest[:60]!r}")
        return out


def available(dialect: str, folder: resources.abc.Traversable | None = None) -> list[Migration]:
    """The migrations shipped, in order, as this dialect runs them."""
    root = folder if folder is not None else resources.files("records").joinpath("migrations")
    plain: dict[int, tuple[str, str]] = {}
    special: dict[int, tuple[str, str]] = {}
    for entry in root.iterdir():
        m = _FILE.match(entry.name)
        if m is None:
            continue
        num, name = int(m["num"]), m["name"]
        target = plain if m["dialect"] is None else special if m["dialect"] == dialect else None
        if target is None:
            continue
        if num in target:
            raise MigrationError(f"two migrations numbered {num:04d} in {root}: "
                                 f"{target[num][0]} and {name}; renumber one")
        target[num] = (name, entry.read_text(encoding="utf-8"))
    chosen = {**plain, **special}
    numbers = sorted(chosen)
    if numbers != list(range(1, len(numbers) + 1)):
        raise MigrationError(f"migrations must be numbered 0001, 0002… without gaps; "
                             f"found {', '.join(f'{n:04d}' for n in numbers)}")
    return [Migration(n, *chosen[n]) for n in numbers]


def applied(db: Database, create: bool = True) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of what the database has run; {} for an empty one.
    ``create=False`` only reads: an empty database stays empty."""
    if not create:
        try:
            with db.transaction(write=False) as tx:
                rows = tx.execute("SELECT version, name, checksum FROM schema_version").fetchall()
        except driver_errors() as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            return {}
        return {int(v): (str(n), str(c)) for v, n, c in rows}
    with db.transaction() as tx:
        tx.execute(_SCHEMA_VERSION)
        rows = tx.execute("SELECT version, name, checksum FROM schema_version").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def migrate(db: Database, migrations: list[Migration] | None = None) -> list[Migration]:
    """Brings the schema up to date; the migrations this call applied (none when current)."""
    todo = migrations if migrations is not None else available(db.dialect)
    known = {m.version for m in todo}
    done: list[Migration] = []
    have = applied(db, create=False)
    if all(have.get(m.version, ("", ""))[1] == m.checksum for m in todo) and \
            set(have) <= known:
        # Current: no write transaction at all, so a consumer starting while another holds
        # the store's write lock goes on to read its stream.
        return done
    applied(db)  # creates schema_version outside the loop's lock-taking transactions
    for migration in todo:
        with db.transaction() as tx:
            if db.dialect == "postgresql":
                tx.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            rows = tx.execute("SELECT version, name, checksum FROM schema_version").fetchall()
            have = {int(v): (str(n), str(c)) for v, n, c in rows}
            newer = sorted(v for v in have if v not in known)
            if newer:
                raise MigrationError(
                    f"{db!r} is at schema version {max(have)}, newer than this cc-core knows "
                    f"({max(known, default=0)}): upgrade cc-core before running it on this store")
            if migration.version in have:
                name, checksum = have[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        f"{db!r} applied it (as {name}): never edit a shipped migration; put "
                        "the change in a new numbered file")
                continue
            for stmt in migration.statements():
                tx.execute(stmt)
            step = _data_step(migration.version)
            if step is not None:
                step(tx)
            tx.execute("INSERT INTO schema_version (version, name, checksum, applied_ms) "
                       "VALUES (?, ?, ?, ?)",
                       (migration.version, migration.name, migration.checksum,
                        int(time.time() * 1000)))
        done.append(migration)
    return done


def require_current(db: Database) -> None:
    """Refuse to read or write a store whose schema is behind this cc-core's."""
    want = available(db.dialect)
    have = applied(db, create=False)
    missing = [m for m in want if m.version not in have]
    if missing:
        raise MigrationError(
            f"{db!r} lacks schema version(s) {', '.join(str(m.version) for m in missing)}: "
            "run `cc-core db migrate` first")
