"""Schema migrations on both stores: an empty database gets every table, a migrated one is
left alone, and the mistakes that would make two databases differ are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from records.db import Database
from records.errors import MigrationError
from records.migrate import Migration, applied, available, migrate, require_current


def _tables(db: Database) -> set[str]:
    with db.transaction() as tx:
        if db.dialect == "sqlite":
            rows = tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        else:
            rows = tx.execute("SELECT tablename FROM pg_tables "
                              "WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_an_empty_store_gets_every_shipped_migration_once(store: Database) -> None:
    done = migrate(store)
    assert [m.version for m in done] == [m.version for m in available(store.dialect)]
    assert {"call_records", "schema_version"} <= _tables(store)
    assert sorted(applied(store)) == [m.version for m in done]
    require_current(store)


def test_a_migrated_store_is_left_as_it_is(store: Database) -> None:
    migrate(store)
    with store.transaction() as tx:
        tx.execute("INSERT INTO call_records (call_uuid, tenant, dnis, timezone, start_ms, "
                   "end_ms, disposition, stored_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   ("u1", "acme", "4008001234", "Asia/Shanghai", 1, 2, "answered", 3))
    before = applied(store)
    assert migrate(store) == []
    assert applied(store) == before
    with store.transaction() as tx:
        assert tx.execute("SELECT count(*) FROM call_records").fetchone() == (1,)


def test_a_new_numbered_file_is_applied_on_top_and_in_order(store: Database) -> None:
    """How a later feature adds its tables: the next number."""
    shipped = available(store.dialect)
    migrate(store)
    n = len(shipped)
    extra = [Migration(n + 1, "example_later", "CREATE TABLE example_later (id TEXT PRIMARY KEY);"),
             Migration(n + 2, "example_owner",
                       "ALTER TABLE example_later ADD COLUMN tenant TEXT;\n"
                       "CREATE INDEX example_later_tenant ON example_later (tenant);")]
    assert [m.version for m in migrate(store, shipped + extra)] == [n + 1, n + 2]
    assert "example_later" in _tables(store)
    assert migrate(store, shipped + extra) == []


def test_a_failing_migration_leaves_nothing_half_done(store: Database) -> None:
    shipped = available(store.dialect)
    migrate(store)
    n = len(shipped)
    broken = Migration(n + 1, "broken", "CREATE TABLE half (a TEXT);\nNOT SQL AT ALL;")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own syntax error
        migrate(store, shipped + [broken])
    assert "half" not in _tables(store) and n + 1 not in applied(store)


def test_an_edited_shipped_migration_is_refused(store: Database) -> None:
    shipped = available(store.dialect)
    migrate(store)
    edited = [Migration(shipped[0].version, shipped[0].name, shipped[0].sql + "\n-- edit\n"),
              *shipped[1:]]
    with pytest.raises(MigrationError, match="changed after .* applied it"):
        migrate(store, edited)


def test_a_store_newer_than_this_code_is_refused(store: Database) -> None:
    shipped = available(store.dialect)
    newer = shipped + [Migration(len(shipped) + 1, "later", "CREATE TABLE later (a TEXT);")]
    migrate(store, newer)
    with pytest.raises(MigrationError, match="newer than this cc-core knows"):
        migrate(store)


def test_a_store_behind_this_code_is_not_read(store: Database) -> None:
    with pytest.raises(MigrationError, match="cc-core db migrate"):
        require_current(store)
    assert "call_records" not in _tables(store)


def test_numbering_gaps_and_dialect_variants(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x TEXT);")
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (x TEXT);")
    (tmp_path / "0002_b.postgresql.sql").write_text("CREATE TABLE b (x JSONB);")
    (tmp_path / "README.md").write_text("not a migration")
    assert "JSONB" in available("postgresql", tmp_path)[1].sql
    assert "JSONB" not in available("sqlite", tmp_path)[1].sql
    (tmp_path / "0004_d.sql").write_text("CREATE TABLE d (x TEXT);")
    with pytest.raises(MigrationError, match="without gaps; found 0001, 0002, 0004"):
        available("sqlite", tmp_path)
