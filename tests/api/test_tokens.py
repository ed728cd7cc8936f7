"""API tokens: per tenant, only a SHA-256 kept, revocable, never valid for another tenant."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from cc_core import keys
from cc_core.api.tokens import Role, UnknownToken
from cc_core.cli import cli


def test_only_the_digest_is_stored_under_the_tenants_key(client, tokens) -> None:
    token, info = tokens.create("acme", Role.SUPERVISOR, label="wallboard")
    assert token.startswith("cct.acme.")
    stored = client.hgetall(keys.api_tokens("acme"))
    assert list(stored) == [hashlib.sha256(token.encode()).hexdigest().encode()]
    assert token.encode() not in b"".join(list(stored) + list(stored.values()))
    assert keys.api_tokens("acme") == "cc:{t:acme}:api:tokens"
    assert tokens.authenticate(token) == info and info.role is Role.SUPERVISOR


def test_a_token_is_looked_up_in_its_own_tenant_only(tokens) -> None:
    token, _ = tokens.create("acme", Role.AGENT)
    forged = token.replace("cct.acme.", "cct.beta.", 1)
    assert tokens.authenticate(forged) is None
    for bad in ("", "cct", "cct.acme", "cct.acme.", "Bearer x", token + "x"):
        assert tokens.authenticate(bad) is None


def test_revoke_stops_the_token_at_once(tokens) -> None:
    token, info = tokens.create("acme", Role.AGENT, agent="1001")
    other, _ = tokens.create("acme", Role.AGENT)
    assert {i.id for i in tokens.list("acme")} == {info.id, tokens.authenticate(other).id}
    assert tokens.revoke("acme", info.id).agent == "1001"
    assert tokens.authenticate(token) is None and tokens.authenticate(other) is not None
    with pytest.raises(UnknownToken):
        tokens.revoke("acme", info.id)
    with pytest.raises(UnknownToken):   # beta cannot revoke acme's tokens
        tokens.revoke("beta", tokens.list("acme")[0].id)


def test_cli_create_list_revoke(redis_url, tenants) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["token", "create", "--tenant", "acme", "--role", "supervisor",
                              "--redis-url", redis_url])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert token.startswith("cct.acme.") and "not shown again" in res.stderr
    res = runner.invoke(cli, ["token", "list", "--tenant", "acme", "--json",
                              "--redis-url", redis_url])
    assert res.exit_code == 0 and token not in res.stdout
    tid = hashlib.sha256(token.encode()).hexdigest()[:12]
    assert f'"id": "{tid}"' in res.stdout and '"role": "supervisor"' in res.stdout
    res = runner.invoke(cli, ["token", "revoke", "--tenant", "acme", tid, "--redis-url",
                              redis_url])
    assert res.exit_code == 0 and f"revoked token {tid}" in res.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--tenant", "nosuch"], "tenant 'nosuch' is not in the applied configuration"),
    (["--tenant", "acme", "--agent", "9999"], "--agent '9999' is not an agent of 'acme'"),
    (["--tenant", "acme", "--role", "supervisor", "--agent", "1001"], "--agent binds an agent"),
])
def test_cli_create_refuses_what_would_not_work(redis_url, tenants, args, needle) -> None:
    res = CliRunner().invoke(cli, ["token", "create", *args, "--redis-url", redis_url])
    assert res.exit_code != 0 and needle in res.stderr
    assert not any(k.startswith(b"cc:{t:") and b":api:tokens" in k
                   for k in __import__("redis").Redis.from_url(redis_url).keys())
