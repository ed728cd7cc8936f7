"""Billing's store tests run on SQLite and on a real PostgreSQL, like the record store's."""

from tests.records.conftest import pg_server, store, store_target  # noqa: F401
