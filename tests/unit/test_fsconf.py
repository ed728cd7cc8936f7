"""`cc-core fsconf render`: the FreeSWITCH configuration of a node, as FreeSWITCH would read it.

The checks here read the rendered files the way the switch does (the pre-processor's includes
and `$${}` variables, the XML dialplan's first matching extension), with no code of
``freeswitch_conf``; that a real FreeSWITCH 1.10.12 starts with it is checked by hand (README).
"""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cc_core.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
PASSWORD = "Esl-test-pw-8731"
AGENT_PW = "agent-pw-1001x"
# What the lab build holds (FreeSWITCH 1.10.12, /work/shared/tools/freeswitch-lab).
LAB_MODULES = set("""mod_console mod_logfile mod_commands mod_dptools mod_callcenter mod_db
mod_hash mod_expr mod_esf mod_fifo mod_sms mod_dialplan_xml mod_sofia mod_loopback
mod_event_socket mod_cdr_csv mod_sndfile mod_native_file mod_tone_stream mod_local_stream
mod_g723_1 mod_amr mod_b64 mod_say_en""".split())
# Variables FreeSWITCH sets itself before it reads the config.
BUILTIN_VARS = {"conf_dir", "sounds_dir", "recordings_dir", "base_dir", "log_dir"}


def base_config(**freeswitch: object) -> dict:
    fs: dict = {
        "workers": ["10.0.0.0/24"], "carrier_port": 5060, "agent_port": 5070,
        "agent_networks": ["10.1.0.0/16"], "voicemail_dir": "/var/lib/cc/voicemail",
        "trunks": [{"name": "carrier", "addresses": ["203.0.113.0/28"],
                    "proxy": "203.0.113.1:5060"}],
        "agents": [{"id": "1001", "password": AGENT_PW, "name": "Alice"}],
        "fallback": {"after_s": 20, "queue_wait_s": 60, "voicemail_max_s": 90},
    }
    fs.update(freeswitch)
    return {"nodes": [{"name": "fs1", "host": "10.0.0.11", "port": 8021, "password": PASSWORD}],
            "esl": {"heartbeat_interval_s": 2}, "freeswitch": fs}


def render(tmp_path: Path, cfg: dict | None = None, tenants: Path = EXAMPLES,
           extra: tuple[str, ...] = (), env: dict | None = None, out: Path | None = None):
    conf = tmp_path / "cc.yaml"
    conf.write_text(yaml.safe_dump(cfg if cfg is not None else base_config()))
    out = out or tmp_path / "fsconf"
    res = CliRunner().invoke(cli, ["fsconf", "render", "--config", str(conf), "--tenants",
                                   str(tenants), "--out", str(out), *extra], env=env or {})
    return res, out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    res, out = render(tmp_path)
    assert res.exit_code == 0, res.output
    return out


# -- the tree as the pre-processor reads it ---------------------------------------------------

def included(root: Path) -> tuple[list[Path], dict[str, str]]:
    """Every file the pre-processor reads from freeswitch.xml, and the variables it sets.
    Fails on an include that matches nothing (FreeSWITCH refuses to start on it)."""
    seen: list[Path] = []
    variables: dict[str, str] = {}

    def visit(path: Path) -> None:
        seen.append(path)
        for el in ET.parse(path).getroot().iter("X-PRE-PROCESS"):
            cmd, data = el.get("cmd"), el.get("data", "")
            if cmd == "include":
                matches = sorted(root.glob(data))
                assert matches, f"{path.relative_to(root)}: include {data!r} matches no file"
                for m in matches:
                    visit(m)
            elif cmd == "set":
                name, _, value = data.partition("=")
                variables[name] = value
    visit(root / "freeswitch.xml")
    return seen, variables


def expand(text: str, variables: dict[str, str], root: Path) -> str:
    env = {**variables, "conf_dir": str(root)}
    for _ in range(3):
        text = re.sub(r"\$\$\{(\w+)\}", lambda m: env.get(m.group(1), m.group(0)), text)
    return text


def test_every_file_is_well_formed_xml_and_every_include_resolves(tree: Path) -> None:
    for path in tree.rglob("*.xml"):
        ET.parse(path)                     # raises on malformed XML
    seen, _ = included(tree)
    # Nothing rendered is dead weight: each XML file is read by the switch.
    assert set(tree.rglob("*.xml")) == set(seen)


def test_every_variable_used_is_set_and_every_referenced_file_exists(tree: Path) -> None:
    seen, variables = included(tree)
    used = {v for p in seen for v in re.findall(r"\$\$\{(\w+)\}", p.read_text())}
    assert used - set(variables) - BUILTIN_VARS == set()
    modules = [el.get("module") for el in ET.parse(
        tree / "autoload_configs/modules.conf.xml").getroot().iter("load")]
    assert set(modules) <= LAB_MODULES, set(modules) - LAB_MODULES
    assert {"mod_sofia", "mod_event_socket", "mod_dialplan_xml", "mod_callcenter",
            "mod_local_stream", "mod_commands", "mod_dptools"} <= set(modules)
    moh = ET.parse(tree / "autoload_configs/local_stream.conf.xml").getroot().find("directory")
    assert moh is not None and moh.get("name") == "moh"
    assert list(Path(expand(moh.get("path", ""), variables, tree)).glob("*.wav"))


def test_names_referenced_across_files_exist(tree: Path) -> None:
    """ACLs, contexts, the fallback queue, the MOH stream: a dangling name is only found by a
    call that needs it."""
    ac = tree / "autoload_configs"
    acls = {el.get("name") for el in ET.parse(ac / "acl.conf.xml").getroot().iter("list")}
    refs = [el.get("value") for f in ("event_socket.conf.xml", "sofia.conf.xml")
            for el in ET.parse(ac / f).getroot().iter("param")
            if el.get("name") == "apply-inbound-acl"]
    refs += [el.get("value") for el in ET.parse(tree / "directory/agents.xml").getroot().iter(
        "param") if el.get("name") == "auth-acl"]
    assert refs and set(refs) <= acls
    dialplan = ET.parse(tree / "dialplan/cc.xml").getroot()
    contexts = {c.get("name") for c in dialplan.iter("context")}
    profile_contexts = {el.get("value") for el in ET.parse(ac / "sofia.conf.xml").getroot().iter(
        "param") if el.get("name") == "context"}
    assert profile_contexts == {"default", "agents"} and profile_contexts <= contexts
    for el in dialplan.iter():
        if el.get("application") in ("transfer", "sched_transfer"):
            words = el.get("data", "").split()
            assert words[-2:][0] == "XML" and words[-1] in contexts, el.attrib
    queues = {q.get("name") for q in ET.parse(ac / "callcenter.conf.xml").getroot().iter("queue")}
    used = {el.get("data") for el in dialplan.iter() if el.get("application") == "callcenter"}
    assert used and used <= queues
    cc = ET.parse(ac / "callcenter.conf.xml").getroot()
    assert [p.get("value") for p in cc.iter("param") if p.get("name") == "moh-sound"] == [
        "local_stream://moh"]
    assert [t.get("agent") for t in cc.iter("tier")] == ["1001"]


# -- the dialplan as mod_dialplan_xml runs it --------------------------------------------------

def route(tree: Path, context: str, dest: str, channel: dict | None = None) -> list[tuple[str, str]]:
    """The applications the first matching extension runs (conditions in order; a failing
    condition runs its anti-actions and stops the extension), $1 substituted."""
    _, variables = included(tree)
    dialplan = ET.parse(tree / "dialplan/cc.xml").getroot()
    ctx = next(c for c in dialplan.iter("context") if c.get("name") == context)
    chan = {"destination_number": dest, **(channel or {})}
    for ext in ctx.iter("extension"):
        apps: list[tuple[str, str]] = []
        first_matched = False
        for i, cond in enumerate(ext.findall("condition")):
            field = cond.get("field", "")
            value = chan.get(field, "") if not field.startswith("${") else chan.get(field[2:-1], "")
            m = re.search(cond.get("expression", ""), value)
            if m is None:
                if i == 0:
                    break
                apps += [(a.get("application", ""), a.get("data", ""))
                         for a in cond.findall("anti-action")]
                break
            first_matched = True
            group = m.group(1) if m.groups() else ""
            apps += [(a.get("application", ""), a.get("data", "").replace("$1", group))
                     for a in cond.findall("action")]
        if first_matched:
            return [(a, expand(d, variables, tree)) for a, d in apps]
    return []


def test_a_configured_400_number_parks_with_the_variables_the_core_reads(tree: Path) -> None:
    apps = route(tree, "default", "4008001234")
    sets = dict(d.split("=", 1) for a, d in apps if a == "set")
    assert sets["cc_tenant"] == "acme" and sets["cc_dnis"] == "4008001234"
    assert sets["cc_caller"] == "${caller_id_number}" and sets["cc_node"] == "fs1"
    assert apps[-1] == ("park", "")
    # The fallback is armed before the call parks (the core cancels it: sched_del <uuid>),
    # and the caller hears ringback, not silence, while it waits; nothing answers it.
    assert apps[-3:-1] == [("sched_transfer", "+20 4008001234 XML cc_fallback"),
                           ("ring_ready", "")]
    assert not {"answer", "pre_answer"} & {a for a, _ in apps}
    # Suspended and reserved numbers park too: the core plays their announcement.
    assert route(tree, "default", "4008009999")[-1] == ("park", "")


@pytest.mark.parametrize("dest", ["4009999999", "13800138000", "400800123", "40080012345", ""])
def test_every_other_number_is_rejected_as_unallocated(tree: Path, dest: str) -> None:
    assert route(tree, "default", dest) == [("hangup", "UNALLOCATED_NUMBER")]


def test_a_cancelled_number_is_rejected_like_an_unknown_one(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "beta.yaml").write_text(
        "tenant: beta\nentry: hangup\nnumbers:\n  '4001110001': {}\n"
        "  '4001110002': {status: cancelled}\n")
    res, out = render(tmp_path, tenants=tenants)
    assert res.exit_code == 0, res.output
    assert route(out, "default", "4001110001")[-1] == ("park", "")
    assert route(out, "default", "4001110002") == [("hangup", "UNALLOCATED_NUMBER")]


def test_a_call_nobody_took_is_answered_announced_queued_then_recorded(tree: Path) -> None:
    apps = route(tree, "cc_fallback", "4008001234")
    names = [a for a, _ in apps]
    assert names.index("answer") < names.index("playback") < names.index("callcenter")
    assert apps[-1] == ("transfer", "cc_voicemail_acme XML cc_fallback")
    voicemail = route(tree, "cc_fallback", "cc_voicemail_acme", {"cc_cause": "cancel"})
    record = dict(voicemail)["record"]
    assert record == "/var/lib/cc/voicemail/acme-fallback-${uuid}.wav 90"
    # An agent of the switch's queue took the call: no message afterwards.
    assert route(tree, "cc_fallback", "cc_voicemail_acme", {"cc_cause": "answered"}) == [
        ("hangup", "NORMAL_CLEARING")]


def test_a_suspended_number_falls_back_to_the_cores_cause_never_answered(tree: Path) -> None:
    assert route(tree, "cc_fallback", "4008009999") == [("hangup", "NO_USER_RESPONSE")]
    assert route(tree, "cc_fallback", "4008000000") == [("hangup", "UNALLOCATED_NUMBER")]


def test_ringback_while_parked_can_be_turned_off(tmp_path: Path) -> None:
    cfg = base_config()
    cfg["freeswitch"]["fallback"]["ring_while_parked"] = False
    res, out = render(tmp_path, cfg)
    assert res.exit_code == 0, res.output
    apps = route(out, "default", "4008001234")
    assert "ring_ready" not in [a for a, _ in apps] and apps[-1] == ("park", "")


def test_without_agents_the_fallback_goes_straight_to_voicemail(tmp_path: Path) -> None:
    res, out = render(tmp_path, base_config(agents=[]))
    assert res.exit_code == 0, res.output
    names = [a for a, _ in route(out, "cc_fallback", "4008001234")]
    assert "callcenter" not in names and names[-1] == "transfer"


def test_agents_dial_400_numbers_only(tree: Path) -> None:
    assert route(tree, "agents", "4008001234") == [("transfer", "4008001234 XML default")]
    assert route(tree, "agents", "13800138000") == [("hangup", "CALL_REJECTED")]


def test_both_sip_profiles_pace_media_by_the_switchs_clock(tree: Path) -> None:
    """Measured on 1.10.12: without rtp-timer-name, an answered caller who sends no RTP hears
    nothing and the fallback's announcement never ends."""
    sofia = ET.parse(tree / "autoload_configs/sofia.conf.xml").getroot()
    for profile in sofia.iter("profile"):
        box = profile.find("settings")
        assert box is not None
        settings = {p.get("name"): p.get("value") for p in box}
        assert settings.get("rtp-timer-name") == "soft", profile.get("name")


# -- core settings and ESL ----------------------------------------------------------------------

def params(path: Path) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in ET.parse(path).getroot().iter("param")}


def test_the_switch_heartbeats_as_often_as_the_workers_expect(tmp_path: Path) -> None:
    cfg = base_config()
    cfg["esl"]["heartbeat_interval_s"] = 3
    res, out = render(tmp_path, cfg)
    assert res.exit_code == 0, res.output
    assert params(out / "autoload_configs/switch.conf.xml")["event-heartbeat-interval"] == "3"


@pytest.mark.parametrize("hb", [20, 2.5])
def test_a_heartbeat_too_slow_or_fractional_is_refused(tmp_path: Path, hb: float) -> None:
    cfg = base_config()
    cfg["esl"]["heartbeat_interval_s"] = hb
    res, out = render(tmp_path, cfg)
    assert res.exit_code == 2 and "esl.heartbeat_interval_s" in res.output
    assert "e.g. 2" in res.output and not out.exists()


def test_esl_listens_where_the_workers_connect_and_only_for_them(tree: Path) -> None:
    _, variables = included(tree)
    esl = {k: expand(v, variables, tree)
           for k, v in params(tree / "autoload_configs/event_socket.conf.xml").items()}
    assert (esl["listen-ip"], esl["listen-port"], esl["password"]) == (
        "10.0.0.11", "8021", PASSWORD)
    workers = [n.get("cidr") for lst in ET.parse(tree / "autoload_configs/acl.conf.xml")
               .getroot().iter("list") if lst.get("name") == esl["apply-inbound-acl"]
               for n in lst.iter("node")]
    assert workers == ["10.0.0.0/24"]


# -- secrets ------------------------------------------------------------------------------------

def test_secrets_are_in_0600_files_only_and_never_printed(tmp_path: Path) -> None:
    res, out = render(tmp_path)
    assert res.exit_code == 0
    secret_files = {p for p in out.rglob("*") if p.is_file()
                    and (PASSWORD.encode() in p.read_bytes() or AGENT_PW.encode() in p.read_bytes())}
    assert {p.relative_to(out).as_posix() for p in secret_files} == {
        "secrets.xml", "directory/agents.xml"}
    for p in secret_files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert PASSWORD not in res.output and AGENT_PW not in res.output


def test_the_esl_password_may_come_from_the_environment(tmp_path: Path) -> None:
    cfg = base_config()
    cfg["nodes"][0].pop("password")
    res, out = render(tmp_path, cfg, env={"CC_ESL_PASSWORD": "From-env-9921"})
    assert res.exit_code == 0, res.output
    assert b"From-env-9921" in (out / "secrets.xml").read_bytes()
    assert "From-env-9921" not in res.output


# -- bad input ----------------------------------------------------------------------------------

def _two_nodes(cfg: dict) -> None:
    cfg["nodes"].append({"name": "fs2", "host": "10.0.0.12", "password": PASSWORD})


@pytest.mark.parametrize("change, extra, says", [
    (lambda c: c["nodes"][0].update(password="ClueCon"), (), "well-known default"),
    (lambda c: c["nodes"][0].update(password="a b c d e f"), (), "whitespace"),
    (_two_nodes, (), "--node NAME"),
    (lambda c: None, ("--node", "fs9"), "no such node"),
    (lambda c: c["nodes"][0].update(host="fs1.example"), (), "not an IP address"),
    (lambda c: c["freeswitch"].update(agent_networks=[]), (), "agent_networks"),
    (lambda c: c["freeswitch"].update(workers=["10.0.0.300/24"]), (), "10.0.0.0/24"),
    (lambda c: c["freeswitch"]["fallback"].update(after_s=8), (), "failover"),
    (lambda c: c["freeswitch"].update(agent_port=5060), (), "a port each"),
])
def test_bad_config_is_refused_with_what_to_fix(tmp_path: Path, change, extra, says) -> None:
    cfg = base_config()
    change(cfg)
    res, out = render(tmp_path, cfg, extra=extra)
    assert res.exit_code == 2, res.output
    assert says in res.output and "config.invalid" in res.output
    assert PASSWORD not in res.output
    assert not out.exists()


def test_render_replaces_its_own_folder_but_no_one_elses(tmp_path: Path) -> None:
    res, out = render(tmp_path)
    assert res.exit_code == 0
    (out / "dialplan" / "stale.xml").write_text("<include/>")
    res, out = render(tmp_path)
    assert res.exit_code == 0 and not (out / "dialplan" / "stale.xml").exists()
    foreign = tmp_path / "etc-freeswitch"
    foreign.mkdir()
    (foreign / "freeswitch.xml").write_text("<document/>")
    res, _ = render(tmp_path, out=foreign)
    assert res.exit_code == 2 and "not written by cc-core" in res.output
    assert (foreign / "freeswitch.xml").read_text() == "<document/>"
