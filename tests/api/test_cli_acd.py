"""cc-core agent ... and cc-core queue list|show|members: tables for people, --json for
scripts, on the real Acd."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cc_core.cli import cli
from tests.api.conftest import needs_acd

pytestmark = needs_acd


def run(redis_url: str, *args: str):
    return CliRunner().invoke(cli, [*args, "--redis-url", redis_url])


def test_agent_login_status_list_logout(redis_url, acd) -> None:
    res = run(redis_url, "agent", "login", "--tenant", "acme", "1001")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].split()[:3] == ["AGENT", "STATUS", "STATE"]
    assert "1001   Available" in res.stdout
    res = run(redis_url, "agent", "status", "--tenant", "acme", "1001", "break",
              "--reason", "training", "--json")
    assert json.loads(res.stdout)["status"] == "On Break"
    res = run(redis_url, "agent", "status", "--tenant", "acme", "1001", "on-demand", "--json")
    assert json.loads(res.stdout)["status"] == "Available (On Demand)"
    res = run(redis_url, "agent", "list", "--tenant", "acme", "--json")
    assert [(a["agent"], a["status"]) for a in json.loads(res.stdout)] == [
        ("1001", "Available (On Demand)"), ("1002", "Logged Out")]
    res = run(redis_url, "agent", "logout", "--tenant", "acme", "1001", "--json")
    assert json.loads(res.stdout)["status"] == "Logged Out"
    assert acd.agent("beta", "1001").status == "Logged Out"


def test_agent_errors_exit_non_zero_with_the_error_id(redis_url, acd) -> None:
    res = run(redis_url, "agent", "login", "--tenant", "acme", "9999")
    assert res.exit_code == 1 and "[unknown_agent]" in res.stderr
    run(redis_url, "agent", "login", "--tenant", "acme", "1001")
    res = run(redis_url, "agent", "login", "--tenant", "acme", "1001")
    assert res.exit_code == 1 and "[already_logged_in]" in res.stderr
    res = CliRunner().invoke(cli, ["agent", "list", "--tenant", "acme"], env={
        "CC_REDIS_URL": ""})
    assert res.exit_code == 2 and "--redis-url" in res.stderr


def test_queue_list_show_members(redis_url, acd) -> None:
    acd.enqueue("acme", "support", "call-1", node="fs1", caller="13900000001")
    res = run(redis_url, "queue", "list", "--tenant", "acme")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["QUEUE", "STRATEGY", "WAITING"]
    assert lines[1].split()[:3] == ["sales", "ring-all", "0"]
    assert lines[2].split()[:3] == ["support", "longest-idle-agent", "1"]
    res = run(redis_url, "queue", "show", "--tenant", "acme", "support")
    assert "agents:" in res.stdout and "waiting:" in res.stdout and "call-1" in res.stdout
    res = run(redis_url, "queue", "show", "--tenant", "acme", "support", "--json")
    assert [a["agent"] for a in json.loads(res.stdout)["agents"]] == ["1001", "1002"]
    res = run(redis_url, "queue", "members", "--tenant", "acme", "support", "--json")
    assert [m["call_uuid"] for m in json.loads(res.stdout)] == ["call-1"]
    res = run(redis_url, "queue", "members", "--tenant", "acme", "nope")
    assert res.exit_code == 1 and "[unknown_queue]" in res.stderr


def test_a_staff_token_is_created_for_the_provider_and_authenticates_as_staff(
        redis_url: str) -> None:
    import redis as redis_lib

    from cc_core.api.tokens import PROVIDER, Role, TokenStore

    res = run(redis_url, "token", "create", "--provider", "--label", "back office")
    assert res.exit_code == 0, res.output
    info = TokenStore(redis_lib.Redis.from_url(redis_url)).authenticate(res.stdout.strip())
    assert info is not None and (info.tenant, info.role) == (PROVIDER, Role.STAFF)
    res = run(redis_url, "token", "create")
    assert res.exit_code == 2 and "give --tenant ID (or --provider" in res.stderr
