"""cc-core queue import: mod_callcenter's callcenter.conf.xml into a tenant file the loader
takes, the same bytes every time, with a warning for each thing not imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.importer import convert
from cc_core.cli import cli
from cc_core.errors import ConfigError
from cc_core.tenants.loader import load_path
from cc_core.tenants.model import AgentStatus, AgentType, Strategy

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "callcenter" / "callcenter.conf.xml"


@pytest.fixture(scope="module")
def imported():
    return convert(FIXTURE.read_text(encoding="utf-8"))


def test_output_loads_with_the_project_loader_into_the_same_tenant(imported, tmp_path) -> None:
    out = tmp_path / "acme.yaml"
    out.write_text(imported.text, encoding="utf-8")
    loaded = load_path(tmp_path)          # a folder: file named after its tenant
    assert loaded.tenants["acme"] == imported.tenant


def test_converting_twice_gives_the_same_bytes(imported) -> None:
    again = convert(FIXTURE.read_bytes())
    assert again.text == imported.text and again.warnings == imported.warnings


def test_queues_take_their_params(imported) -> None:
    t = imported.tenant
    assert sorted(t.queues) == ["sales", "support", "vip"]      # @acme dropped: the tenant
    support, sales, vip = t.queues["support"], t.queues["sales"], t.queues["vip"]
    assert support.strategy is Strategy.LONGEST_IDLE_AGENT
    assert sales.strategy is Strategy.RING_ALL                   # Ring-All: case-insensitive
    assert vip.strategy is Strategy.RING_PROGRESSIVELY
    assert vip.ring_progressively_delay_s == 10                  # 0: mod_callcenter's 10 s
    assert (support.max_wait_s, support.max_wait_no_agent_s,
            support.max_wait_no_agent_reached_s) == (600, 120, 5)
    assert support.time_base_score == "system"
    assert support.tier_rules_apply and support.tier_rule_wait_s == 30
    assert support.tier_rule_wait_multiply_level and not support.tier_rule_no_agent_no_wait
    assert support.abandoned_resume_allowed and support.discard_abandoned_after_s == 60
    assert support.announce.prompt == "support_announce" and support.announce.every_s == 45
    assert t.prompts["support_announce"].endswith("please-hold.wav")
    assert sales.moh == "local_stream://sales"
    assert support.moh == "local_stream://moh"                  # $${hold_music}: not expanded
    assert sales.max_wait_s == 86_400                            # clamped, with a warning
    # Left out: mod_callcenter's defaults, not ours.
    assert (sales.tier_rule_wait_s, sales.tier_rule_wait_multiply_level,
            sales.tier_rule_no_agent_no_wait) == (0, False, True)
    # settings: agent-originate-timeout rings each agent that long, in every queue.
    assert {q.ring_timeout_s for q in t.queues.values()} == {25}
    assert t.entry.target == "support"                           # the first queue written


def test_agents_and_tiers(imported) -> None:
    t = imported.tenant
    assert sorted(t.agents) == ["1001", "1002", "2001", "3001"]  # 9001 has no type: skipped
    a = t.agents["1001"]
    assert a.contact == "[leg_timeout=20]user/1001@acme" and a.type is AgentType.CALLBACK
    assert (a.max_no_answer, a.wrap_up_s, a.reject_delay_s, a.busy_delay_s,
            a.no_answer_delay_s) == (3, 10, 10, 60, 20)
    b = t.agents["2001"]                       # absent numbers are 0 in mod_callcenter
    assert (b.max_no_answer, b.reject_delay_s, b.busy_delay_s, b.no_answer_delay_s) == (0,) * 4
    assert b.wrap_up_s == 30 and b.not_registered_delay_s == 5
    assert t.agents["3001"].type is AgentType.UUID_STANDBY
    assert [(x.agent, x.level, x.position) for x in t.queues["support"].tiers] == [
        ("1001", 1, 1), ("1002", 1, 2), ("2001", 2, 1)]
    assert [(x.agent, x.level, x.position) for x in t.queues["sales"].tiers] == [
        ("2001", 1, 1), ("1001", 2, 1)]            # no level/position: 1 and 1
    # agent-no-answer-status: from the queue where the agent's tier is best.
    assert t.agents["1001"].no_answer_status is AgentStatus.ON_BREAK      # support, level 1
    assert t.agents["2001"].no_answer_status is AgentStatus.LOGGED_OUT    # sales, level 1


@pytest.mark.parametrize("needle", [
    "settings: odbc-dsn is not imported",
    "settings: cc-instance-id is not imported",
    "param 'record-template' is not imported: recording is set by the project's recording",
    "param 'skip-agents-with-external-calls' is not imported",
    "param 'queue-colour' is unknown",
    "param 'moh-sound': '$${hold_music}' is a switch variable",
    "param 'max-wait-time': 172800 is outside what cc-core accepts",
    "agent '1001@acme': status 'Available' is not imported",
    "agent '9001@acme' is skipped",
    "tier '1001@acme' in 'billing@acme' is skipped: no queue",
    "agent '1001@acme': its queues set different agent-no-answer-status",
])
def test_each_thing_not_imported_is_a_warning_naming_it(imported, needle: str) -> None:
    assert any(needle in w for w in imported.warnings), imported.warnings
    assert needle in imported.text             # also in the file's header, as comments


def test_a_logged_out_agent_status_is_no_warning(imported) -> None:
    assert not any("1002@acme': status" in w for w in imported.warnings)


def test_inside_a_whole_freeswitch_xml_and_with_an_explicit_tenant() -> None:
    inner = FIXTURE.read_text(encoding="utf-8")
    inner = inner[inner.index("<configuration"):]
    doc = f'<document type="freeswitch/xml"><section name="configuration">{inner}</section>' \
          "</document>"
    got = convert(doc, tenant="beta")
    assert got.tenant.tenant == "beta" and sorted(got.tenant.queues) == ["sales", "support", "vip"]


@pytest.mark.parametrize(("xml", "tenant", "needle"), [
    ("<configuration name='callcenter.conf'><queues>", None, "not well-formed XML"),
    ("<configuration name='switch.conf'/>", None, 'no <configuration name="callcenter.conf">'),
    ("<configuration name='callcenter.conf'><queues><queue name='a@x'/><queue name='b@y'/>"
     "</queues></configuration>", None, "pass --tenant ID"),
    ("<configuration name='callcenter.conf'/>", "Bad Name", "--tenant 'Bad Name'"),
])
def test_unusable_input_is_refused_with_the_fix(xml: str, tenant: str | None,
                                               needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        convert(xml, tenant=tenant)
    assert needle in str(err.value)


def test_queues_of_two_domains_with_one_name_keep_their_domain() -> None:
    got = convert("<configuration name='callcenter.conf'><queues><queue name='s@a'/>"
                  "<queue name='s@b'/><queue name='t@a'/></queues></configuration>", tenant="x")
    assert sorted(got.tenant.queues) == ["s@a", "s@b", "t"]


def test_cli_writes_the_file_and_prints_warnings(tmp_path: Path) -> None:
    out = tmp_path / "acme.yaml"
    runner = CliRunner()
    res = runner.invoke(cli, ["queue", "import", str(FIXTURE), "--out", str(out)])
    assert res.exit_code == 0, res.output
    first = out.read_bytes()
    assert "warning: settings: odbc-dsn is not imported" in res.stderr
    assert f"wrote tenant acme to {out}: 4 agents, 3 queues, 6 tiers" in res.stdout
    res = runner.invoke(cli, ["queue", "import", str(FIXTURE), "--out", str(out)])
    assert res.exit_code == 0 and out.read_bytes() == first
    assert runner.invoke(cli, ["config", "validate", str(out)]).exit_code == 0


def test_cli_without_out_prints_the_yaml(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["queue", "import", str(FIXTURE), "--tenant", "beta"])
    assert res.exit_code == 0 and res.stdout.splitlines()[-1].startswith("    tier_rule")
    assert "\ntenant: beta\n" in res.stdout


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.xml"
    bad.write_text("<nope")
    res = CliRunner().invoke(cli, ["queue", "import", str(bad)])
    assert res.exit_code == 2 and "not well-formed XML" in res.stderr
    assert "[config.invalid]" in res.stderr
