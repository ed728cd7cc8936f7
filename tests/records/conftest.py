"""The record store's fixtures: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL is Debian's server (``make deps`` installs the package without starting it),
started once per test session by ``records.pg_server.PrivatePostgres`` in a temporary
directory on loopback; each test gets a database of its own.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cc_core.errors import EnvironmentProblem
from records.db import Database, open_database
from records.pg_server import PrivatePostgres, server_bin_dir

_names = itertools.count(1)


REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PrivatePostgres]:
    if server_bin_dir() is None:
        # `make test` installs it first (`make deps`); a bare pytest run tries the same way.
        res = subprocess.run(["bash", str(REPO / "tools" / "install-deps.sh"), "postgresql"],
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                             check=False)
        if server_bin_dir() is None:
            pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin) and "
                        "the Debian package postgresql could not be installed: "
                        f"{(res.stderr or res.stdout).strip()[-500:]}")
    try:
        server = PrivatePostgres().start()
    except EnvironmentProblem as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a SQLite file path or a PostgreSQL DSN of a fresh database."""
    if request.param == "sqlite":
        yield str(tmp_path / "records.sqlite3")
        return
    server: PrivatePostgres = request.getfixturevalue("pg_server")
    name = f"t{next(_names)}_{request.node.name.split('[')[0][-40:]}".lower()
    dsn = server.create_database(name)
    try:
        yield dsn
    finally:
        server.drop_database(name)


@pytest.fixture
def store(store_target: str) -> Iterator[Database]:
    with open_database(store_target) as db:
        yield db
