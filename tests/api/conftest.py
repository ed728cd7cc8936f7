"""Two tenants with the same agent and queue names on a real Redis, tokens for each, and the
API app over the real ``acd.store.Acd``."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from falcon import testing

from cc_core.api.app import create_app
from cc_core.api.tokens import PROVIDER, Role, TokenStore
from cc_core.tenants.loader import load_path
from cc_core.tenants.store import TenantStore

HAVE_ACD = importlib.util.find_spec("acd.store") is not None
needs_acd = pytest.mark.skipif(not HAVE_ACD, reason="acd.store.Acd is not on this branch yet "
                               "(acd-core): these run against the real store, never a fake")

TENANT = """tenant: {tid}
entry: queue:support
numbers: {{"{number}": {{}}}}
agents:
  "1001": {{name: Ann, contact: "user/1001@{tid}"}}
  "1002": {{name: Bob, contact: "user/1002@{tid}"}}
queues:
  support: {{tiers: [{{agent: "1001"}}, {{agent: "1002", position: 2}}]}}
  sales: {{strategy: ring-all, tiers: [{{agent: "1002"}}]}}
"""


def write_tenants(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme.yaml").write_text(TENANT.format(tid="acme", number="4008001234"))
    (folder / "beta.yaml").write_text(TENANT.format(tid="beta", number="4008005678"))
    return folder


@pytest.fixture
def client(redis_url: str) -> Iterator[redis_lib.Redis]:
    c = redis_lib.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def tenants(client: redis_lib.Redis, tmp_path: Path) -> dict[str, Any]:
    loaded = load_path(write_tenants(tmp_path / "tenants"))
    TenantStore(client).apply(loaded)
    return loaded.tenants


@pytest.fixture
def acd(client: redis_lib.Redis, tenants: dict[str, Any]) -> Any:
    if not HAVE_ACD:
        return None
    from acd.store import Acd

    store = Acd(client)
    for tenant in tenants.values():
        store.sync(tenant)
    return store


@pytest.fixture
def tokens(client: redis_lib.Redis) -> TokenStore:
    return TokenStore(client)


@pytest.fixture
def issued(tokens: TokenStore, tenants: dict[str, Any]) -> dict[str, str]:
    out = {}
    for tid in ("acme", "beta"):
        out[f"{tid}-supervisor"] = tokens.create(tid, Role.SUPERVISOR)[0]
        out[f"{tid}-agent"] = tokens.create(tid, Role.AGENT)[0]
        out[f"{tid}-1001"] = tokens.create(tid, Role.AGENT, agent="1001")[0]
    return out


@pytest.fixture
def api(acd: Any, tokens: TokenStore, tmp_path: Path) -> testing.TestClient:
    # The number business's routes run on a record store of their own (SQLite).
    return testing.TestClient(create_app(acd=acd, tokens=tokens,
                                         records=str(tmp_path / "records.sqlite3"),
                                         materials_root=str(tmp_path / "materials")))


@pytest.fixture
def staff(tokens: TokenStore) -> str:
    """A token of the provider's staff."""
    return tokens.create(PROVIDER, Role.STAFF)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def snapshot(client: redis_lib.Redis) -> dict[bytes, Any]:
    """Every key and its value, to show a refused request changed nothing."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(count=1000)):
        out[key] = (client.type(key), client.dump(key))
    return out
