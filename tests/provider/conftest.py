"""The inventory runs on the record store: the same SQLite and PostgreSQL fixtures."""

from tests.records.conftest import pg_server, store, store_target  # noqa: F401
