"""The FreeSWITCH configuration of one node, built from the product's config and its tenants.

The tree is the project's own minimal XML, built element by element (so every value is
escaped and every file is well-formed by construction):

    freeswitch.xml                 root: includes the files below, in three sections
    vars.xml                       addresses, ports, folders, the node's name (global variables)
    secrets.xml          (0600)    the ESL password, as the variable cc_esl_password
    autoload_configs/*.conf.xml    modules, core settings, logs, ESL, ACLs, SIP, MOH, fallback queue
    dialplan/cc.xml                contexts default (400 numbers park), cc_fallback, agents
    directory/agents.xml (0600)    one user per agent phone, with its password
    moh/cc-hold.wav                music on hold when no moh_dir is configured

Never busy when the core is down: before parking a 400 call the dialplan schedules, with
``sched_transfer``, a transfer into context ``cc_fallback`` after ``fallback.after_s``. A worker
that takes the call cancels it with ``api sched_del <call uuid>`` (the scheduler files the task
under the channel's uuid, switch_ivr_async.c:switch_ivr_schedule_transfer).
"""

from __future__ import annotations

import ipaddress
import math
import os
import shutil
import struct
import tempfile
import wave
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from cc_core.config import Config
from cc_core.errors import ConfigError
from cc_core.tenants.loader import LoadedConfig
from cc_core.tenants.model import NumberStatus
from freeswitch_conf.model import SECRET_FORBIDDEN, check_secret

# Only what a node of this core uses; each is built by the lab (FreeSWITCH 1.10.12, 24 modules).
MODULES = (
    "mod_console", "mod_logfile",                    # loggers first: later failures get logged
    "mod_event_socket",                              # the workers
    "mod_sofia", "mod_loopback",                     # SIP trunks and phones; selftest calls
    "mod_commands", "mod_dptools", "mod_db", "mod_hash",
    "mod_dialplan_xml",
    "mod_callcenter",                                # the fallback queue
    "mod_sndfile", "mod_native_file", "mod_tone_stream", "mod_local_stream",
)

# A stalled switch is declared dead after heartbeat_interval_s * heartbeat_misses of silence
# (esl_handlers.link); beyond this the "within seconds" promise of a failover no longer holds.
MAX_HEARTBEAT_S = 5
WEAK_PASSWORDS = {"ClueCon", "cluecon"}
MARKER = ".cc-core-fsconf"
PASSWORD_ENV = "CC_ESL_PASSWORD"
FALLBACK_CONTEXT = "cc_fallback"
FALLBACK_QUEUE = "cc_fallback"
# The core's causes for numbers that are never answered (cc_core.flow.decide).
NOT_IN_SERVICE_CAUSE = {NumberStatus.RESERVED: "UNALLOCATED_NUMBER",
                        NumberStatus.SUSPENDED: "NO_USER_RESPONSE"}


@dataclass
class Rendered:
    node: str
    files: dict[str, bytes] = field(default_factory=dict)
    secret: set[str] = field(default_factory=set)      # written 0600
    numbers: int = 0
    tenants: int = 0


def _x(tag: str, parent: ET.Element | None = None, **attrs: str) -> ET.Element:
    el = ET.Element(tag, attrs) if parent is None else ET.SubElement(parent, tag, attrs)
    return el


def _params(parent: ET.Element, tag: str, pairs: Mapping[str, str | int],
            child: str = "param") -> ET.Element:
    box = _x(tag, parent)
    for name, value in pairs.items():
        _x(child, box, name=name, value=str(value))
    return box


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, "  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                       xml_declaration=False) + b"\n"


def _sets(pairs: Mapping[str, str | int]) -> bytes:
    root = _x("include")
    for name, value in pairs.items():
        _x("X-PRE-PROCESS", root, cmd="set", data=f"{name}={value}")
    return _xml(root)


def _node(cfg: Config, name: str | None) -> tuple[str, str, int, str]:
    """(node name, ESL host, ESL port, password source) for the node being rendered."""
    if not cfg.nodes:
        raise ConfigError("the config lists no nodes: add one under nodes: (name, host, port, "
                          "password), the node this configuration is for")
    if name is None:
        if len(cfg.nodes) > 1:
            raise ConfigError("the config lists several nodes "
                              f"({', '.join(n.name for n in cfg.nodes)}): say which one with "
                              "--node NAME")
        node = cfg.nodes[0]
    else:
        found = [n for n in cfg.nodes if n.name == name]
        if not found:
            raise ConfigError(f"--node {name!r}: no such node in the config (nodes: "
                              f"{', '.join(n.name for n in cfg.nodes)})")
        node = found[0]
    return node.name, node.host, node.port, node.password


def _password(node_password: str, environ: Mapping[str, str]) -> str:
    password = environ.get(PASSWORD_ENV) or node_password
    source = PASSWORD_ENV if environ.get(PASSWORD_ENV) else "nodes[].password"
    if password in WEAK_PASSWORDS:
        raise ConfigError(f"the ESL password ({source}) is FreeSWITCH's well-known default; "
                          f"set a long random one in nodes[].password or {PASSWORD_ENV}")
    try:
        return check_secret(password, f"the ESL password ({source})")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _heartbeat(cfg: Config) -> int:
    hb = cfg.esl.heartbeat_interval_s
    if hb != int(hb) or hb > MAX_HEARTBEAT_S:
        dead = hb * cfg.esl.heartbeat_misses
        raise ConfigError(
            f"esl.heartbeat_interval_s is {hb:g}: the switch would send HEARTBEAT every "
            f"{hb:g} s and the workers would notice a stalled switch only after {dead:g} s; "
            f"set esl.heartbeat_interval_s to a whole number of seconds from 1 to "
            f"{MAX_HEARTBEAT_S} (e.g. 2): the workers and the switch read the same value")
    return int(hb)


# A standby takes an orphaned call within the lease TTL plus this (README, "No call left
# behind"); the switch must not serve a call by itself while a standby is about to take it.
TAKEOVER_MARGIN_S = 5


def _fallback_after(cfg: Config) -> int:
    after = cfg.freeswitch.fallback.after_s
    takeover = cfg.esl.lease_ttl_ms / 1000 + TAKEOVER_MARGIN_S
    if after <= takeover:
        raise ConfigError(
            f"freeswitch.fallback.after_s is {after}: a standby worker takes a dead owner's "
            f"calls within esl.lease_ttl_ms + {TAKEOVER_MARGIN_S} s = {takeover:g} s, so calls "
            f"would fall back to the switch during every failover; set after_s above "
            f"{takeover:g} (e.g. {math.ceil(takeover) + 10})")
    return after


def _ip(value: str, what: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{what} is {value!r}, not an IP address; FreeSWITCH binds to an "
                          "address: set freeswitch.nodes.<node>.sip_ip / esl_ip") from None
    return value


def render(cfg: Config, tenants: LoadedConfig, node: str | None = None,
           environ: Mapping[str, str] | None = None) -> Rendered:
    """The whole tree for one node, in memory; raises ConfigError naming what to fix."""
    env = dict(os.environ if environ is None else environ)
    sw = cfg.freeswitch
    name, host, esl_port, node_password = _node(cfg, node)
    password = _password(node_password, env)
    heartbeat = _heartbeat(cfg)
    _fallback_after(cfg)
    addrs = sw.nodes.get(name)
    unknown = sorted(set(sw.nodes) - {n.name for n in cfg.nodes})
    if unknown:
        raise ConfigError(f"freeswitch.nodes names {', '.join(unknown)}, which nodes: does "
                          "not list; use the names under nodes:")
    sip_ip = _ip((addrs and addrs.sip_ip) or host, f"node {name}'s SIP address")
    esl_ip = _ip((addrs and addrs.esl_ip) or host, f"node {name}'s ESL address")
    ext_ip = (addrs and addrs.ext_ip) or sip_ip
    domain = sw.agent_domain or sip_ip

    out = Rendered(node=name)
    files = out.files
    files["freeswitch.xml"] = _root()
    files["vars.xml"] = _sets({
        "cc_node": name, "cc_sip_ip": sip_ip, "cc_ext_ip": ext_ip, "cc_esl_ip": esl_ip,
        "cc_esl_port": esl_port, "cc_carrier_port": sw.carrier_port,
        "cc_agent_port": sw.agent_port, "cc_agent_domain": domain,
        "cc_voicemail_dir": sw.voicemail_dir, "cc_fallback_s": sw.fallback.after_s,
        "cc_moh_dir": sw.moh_dir or "$${conf_dir}/moh",
    })
    files["secrets.xml"] = _sets({"cc_esl_password": password})
    out.secret.add("secrets.xml")
    ac = "autoload_configs/"
    files[ac + "modules.conf.xml"] = _modules()
    files[ac + "switch.conf.xml"] = _switch(cfg, heartbeat)
    files[ac + "console.conf.xml"] = _console()
    files[ac + "logfile.conf.xml"] = _logfile()
    files[ac + "event_socket.conf.xml"] = _event_socket()
    files[ac + "acl.conf.xml"] = _acl(cfg)
    files[ac + "sofia.conf.xml"] = _sofia(cfg)
    files[ac + "local_stream.conf.xml"] = _local_stream()
    files[ac + "callcenter.conf.xml"] = _callcenter(cfg)
    files[ac + "db.conf.xml"] = _db()
    files["dialplan/cc.xml"], out.numbers, out.tenants = _dialplan(cfg, tenants, name)
    files["directory/agents.xml"] = _directory(cfg)
    out.secret.add("directory/agents.xml")
    if sw.moh_dir is None:
        files["moh/cc-hold.wav"] = _hold_tone()
    files[MARKER] = (b"Rendered by `cc-core fsconf render`; the next render replaces this "
                     b"whole folder.\n")
    return out


def _root() -> bytes:
    doc = _x("document", type="freeswitch/xml")
    _x("X-PRE-PROCESS", doc, cmd="include", data="vars.xml")
    _x("X-PRE-PROCESS", doc, cmd="include", data="secrets.xml")
    for section, folder in (("configuration", "autoload_configs"), ("dialplan", "dialplan"),
                            ("directory", "directory")):
        sec = _x("section", doc, name=section)
        _x("X-PRE-PROCESS", sec, cmd="include", data=f"{folder}/*.xml")
    return _xml(doc)


def _configuration(name: str) -> ET.Element:
    return _x("configuration", name=name)


def _modules() -> bytes:
    conf = _configuration("modules.conf")
    mods = _x("modules", conf)
    for module in MODULES:
        _x("load", mods, module=module)
    return _xml(conf)


def _switch(cfg: Config, heartbeat: int) -> bytes:
    sw = cfg.freeswitch
    conf = _configuration("switch.conf")
    _params(conf, "settings", {
        "max-sessions": sw.max_sessions, "sessions-per-second": sw.sessions_per_second,
        "loglevel": "info", "colorize-console": "false",
        "rtp-start-port": sw.rtp_ports[0], "rtp-end-port": sw.rtp_ports[1],
        # The workers' liveness check (esl.heartbeat_interval_s) reads this same period.
        "event-heartbeat-interval": heartbeat,
    })
    return _xml(conf)


def _console() -> bytes:
    conf = _configuration("console.conf")
    _params(conf, "mappings", {"all": "console,debug,info,notice,warning,err,crit,alert"},
            child="map")
    _params(conf, "settings", {"colorize": "false", "loglevel": "info"})
    return _xml(conf)


def _logfile() -> bytes:
    conf = _configuration("logfile.conf")
    _params(conf, "settings", {"rotate-on-hup": "true"})
    profile = _x("profile", _x("profiles", conf), name="default")
    _params(profile, "settings", {"rollover": 100 * 1024 * 1024, "maximum-rotate": 10})
    _params(profile, "mappings", {"all": "info,notice,warning,err,crit,alert"}, child="map")
    return _xml(conf)


def _event_socket() -> bytes:
    conf = _configuration("event_socket.conf")
    _params(conf, "settings", {
        "nat-map": "false", "listen-ip": "$${cc_esl_ip}", "listen-port": "$${cc_esl_port}",
        "password": "$${cc_esl_password}", "apply-inbound-acl": "cc_workers",
    })
    return _xml(conf)


def _acl(cfg: Config) -> bytes:
    sw = cfg.freeswitch
    conf = _configuration("acl.conf")
    lists = _x("network-lists", conf)
    carriers = [a for t in sw.trunks for a in t.addresses]
    for list_name, cidrs in (("cc_workers", sw.workers), ("cc_carriers", carriers),
                             ("cc_agents", sw.agent_networks)):
        lst = _x("list", lists, name=list_name, default="deny")
        for cidr in cidrs:
            _x("node", lst, type="allow", cidr=cidr)
    return _xml(conf)


_SIP_COMMON = {
    "dialplan": "XML", "sip-ip": "$${cc_sip_ip}", "rtp-ip": "$${cc_sip_ip}",
    "ext-sip-ip": "$${cc_ext_ip}", "ext-rtp-ip": "$${cc_ext_ip}",
    # China's networks carry G.711 A-law first.
    "inbound-codec-prefs": "PCMA,PCMU", "outbound-codec-prefs": "PCMA,PCMU",
    "dtmf-type": "rfc2833", "rfc2833-pt": "101",
    # Without a timer a channel's media is paced by the far end's RTP: a caller whose side
    # sends none (measured with SIPp) stalls every prompt and sleep on the switch.
    "rtp-timer-name": "soft",
    "manage-presence": "false", "accept-blind-reg": "false", "accept-blind-auth": "false",
}


def _sofia(cfg: Config) -> bytes:
    sw = cfg.freeswitch
    conf = _configuration("sofia.conf")
    _params(conf, "global_settings", {"log-level": "0"})
    profiles = _x("profiles", conf)

    carriers = _x("profile", profiles, name="carriers")
    gateways = _x("gateways", carriers)
    for trunk in sw.trunks:
        if trunk.proxy:
            gw = _x("gateway", gateways, name=trunk.name)
            for k, v in {"proxy": trunk.proxy, "register": "false",
                         "caller-id-in-from": "true"}.items():
                _x("param", gw, name=k, value=v)
    _params(carriers, "settings", {
        **_SIP_COMMON, "context": "default", "sip-port": "$${cc_carrier_port}",
        # Carriers are known by address: anyone else is refused with 403, never challenged.
        "auth-calls": "false", "apply-inbound-acl": "cc_carriers", "disable-register": "true",
    })

    agents = _x("profile", profiles, name="agents")
    _params(agents, "settings", {
        **_SIP_COMMON, "context": "agents", "sip-port": "$${cc_agent_port}",
        # Every phone authenticates; the user's auth-acl (directory) limits where from.
        "auth-calls": "true", "force-register-domain": "$${cc_agent_domain}",
        "force-register-db-domain": "$${cc_agent_domain}",
        "challenge-realm": "$${cc_agent_domain}",
    })
    return _xml(conf)


def _local_stream() -> bytes:
    conf = _configuration("local_stream.conf")
    d = _x("directory", conf, name="moh", path="$${cc_moh_dir}")
    for k, v in {"rate": "8000", "shuffle": "true", "channels": "1", "interval": "20",
                 "timer-name": "soft"}.items():
        _x("param", d, name=k, value=v)
    return _xml(conf)


def _callcenter(cfg: Config) -> bytes:
    sw = cfg.freeswitch
    conf = _configuration("callcenter.conf")
    _x("settings", conf)
    queues = _x("queues", conf)
    queue = _x("queue", queues, name=FALLBACK_QUEUE)
    for k, v in {"strategy": "longest-idle-agent", "moh-sound": "local_stream://moh",
                 "time-base-score": "system", "max-wait-time": str(sw.fallback.queue_wait_s),
                 # With nobody logged in, waiting is pointless: on to voicemail.
                 "max-wait-time-with-no-agent": "5",
                 "max-wait-time-with-no-agent-time-reached": "5",
                 "tier-rules-apply": "false", "discard-abandoned-after": "60",
                 "abandoned-resume-allowed": "false"}.items():
        _x("param", queue, name=k, value=v)
    agents = _x("agents", conf)
    tiers = _x("tiers", conf)
    for agent in sw.agents:
        _x("agent", agents, name=agent.id, type="callback",
           contact=f"[call_timeout=20]user/{agent.id}@$${{cc_agent_domain}}",
           status="Available", **{"max-no-answer": "3", "wrap-up-time": "10",
                                  "reject-delay-time": "10", "busy-delay-time": "60"})
        _x("tier", tiers, agent=agent.id, queue=FALLBACK_QUEUE, level="1", position="1")
    return _xml(conf)


def _db() -> bytes:
    # mod_db's limit and db apps on the switch's own sqlite; without the file it logs an error.
    conf = _configuration("db.conf")
    _x("settings", conf)
    return _xml(conf)


def _directory(cfg: Config) -> bytes:
    sw = cfg.freeswitch
    root = _x("include")
    domain = _x("domain", root, name="$${cc_agent_domain}")
    _params(domain, "params", {
        "dial-string": "{presence_id=${dialed_user}@${dialed_domain}}"
                       "${sofia_contact(agents/${dialed_user}@${dialed_domain})}"})
    users = _x("users", _x("group", _x("groups", domain), name="agents"))
    for agent in sw.agents:
        user = _x("user", users, id=agent.id)
        _params(user, "params", {"password": agent.password, "auth-acl": "cc_agents"})
        _params(user, "variables", {"user_context": "agents",
                                    "effective_caller_id_name": agent.name or agent.id,
                                    "effective_caller_id_number": agent.id}, child="variable")
    return _xml(root)


def _alternation(numbers: list[str]) -> str:
    return "^(" + "|".join(numbers) + ")$"


def _dialplan(cfg: Config, loaded: LoadedConfig, node: str) -> tuple[bytes, int, int]:
    sw = cfg.freeswitch
    fb = sw.fallback
    root = _x("include")
    default = _x("context", root, name="default")
    fallback = _x("context", root, name=FALLBACK_CONTEXT)
    count = 0
    by_cause: dict[str, list[str]] = {}
    for tid, tenant in sorted(loaded.tenants.items()):
        active = sorted(n for n, c in tenant.numbers.items() if c.status is NumberStatus.ACTIVE)
        for number, ncfg in sorted(tenant.numbers.items()):
            cause = NOT_IN_SERVICE_CAUSE.get(ncfg.status)
            if cause:
                by_cause.setdefault(cause, []).append(number)
        numbers = sorted(n for n, c in tenant.numbers.items()
                         if c.status is not NumberStatus.CANCELLED)
        if not numbers:
            continue
        count += len(numbers)
        ext = _x("extension", default, name=f"cc_400_{tid}")
        cond = _x("condition", ext, field="destination_number",
                  expression=_alternation(numbers))
        apps = [
            ("set", f"cc_tenant={tid}"), ("set", "cc_dnis=$1"),
            ("set", "cc_caller=${caller_id_number}"), ("set", f"cc_node={node}"),
            ("set", f"cc_fallback_s={fb.after_s}"),
            # Filed under this channel's uuid: the worker that takes the call cancels it
            # with `sched_del <uuid>`; if none does, the switch serves the caller itself.
            ("sched_transfer", f"+{fb.after_s} $1 XML {FALLBACK_CONTEXT}"),
        ]
        if fb.ring_while_parked:
            apps.append(("ring_ready", ""))
        apps.append(("park", ""))
        for app, data in apps:
            _x("action", cond, application=app, **({"data": data} if data else {}))
        if active:
            _fallback_extensions(fallback, tid, active, cfg)
    for cause, numbers in sorted(by_cause.items()):
        # Never answered, as the core would do; without the core there is no announcement.
        ext = _x("extension", fallback, name=f"cc_fallback_{cause.lower()}")
        cond = _x("condition", ext, field="destination_number", expression=_alternation(numbers))
        _x("action", cond, application="hangup", data=cause)
    ext = _x("extension", default, name="cc_not_ours")
    cond = _x("condition", ext, field="destination_number", expression="^.*$")
    _x("action", cond, application="hangup", data="UNALLOCATED_NUMBER")

    agents = _x("context", root, name="agents")
    ext = _x("extension", agents, name="cc_agent_dials_400")
    cond = _x("condition", ext, field="destination_number", expression=r"^(400\d{7})$")
    _x("action", cond, application="transfer", data="$1 XML default")
    ext = _x("extension", agents, name="cc_agent_not_allowed")
    cond = _x("condition", ext, field="destination_number", expression="^.*$")
    _x("action", cond, application="hangup", data="CALL_REJECTED")
    return _xml(root), count, len(loaded.tenants)


def _fallback_extensions(ctx: ET.Element, tid: str, numbers: list[str], cfg: Config) -> None:
    sw = cfg.freeswitch
    fb = sw.fallback
    ext = _x("extension", ctx, name=f"cc_fallback_{tid}")
    cond = _x("condition", ext, field="destination_number", expression=_alternation(numbers))
    apps: list[tuple[str, str]] = [
        ("set", "cc_fallback=taken"), ("answer", ""), ("sleep", "500"),
        ("playback", fb.announce)]
    if sw.agents and fb.queue_wait_s > 0:
        apps.append(("callcenter", FALLBACK_QUEUE))
    apps.append(("transfer", f"cc_voicemail_{tid} XML {FALLBACK_CONTEXT}"))
    for app, data in apps:
        _x("action", cond, application=app, **({"data": data} if data else {}))

    # The queue returns here both when nobody answered and when an agent's call ended:
    # only the first leaves a message.
    ext = _x("extension", ctx, name=f"cc_voicemail_{tid}")
    _x("condition", ext, field="destination_number", expression=f"^cc_voicemail_{tid}$")
    cond = _x("condition", ext, field="${cc_cause}", expression="^answered$")
    _x("action", cond, application="hangup", data="NORMAL_CLEARING")
    for app, data in (
        ("playback", "tone_stream://%(500,0,800)"),
        ("record", f"$${{cc_voicemail_dir}}/{tid}-fallback-${{uuid}}.wav {fb.voicemail_max_s}"),
        ("hangup", "NORMAL_CLEARING"),
    ):
        _x("anti-action", cond, application=app, data=data)


def _hold_tone() -> bytes:
    """Five seconds of a soft two-tone chime at 8 kHz: MOH that needs no sound package."""
    rate = 8000
    buf = BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        for i in range(5 * rate):
            t = i / rate
            f = 523.25 if (t % 2.5) < 1.25 else 659.25
            envelope = min(1.0, (t % 1.25) * 8) * max(0.0, 1 - (t % 1.25) / 1.25)
            frames += struct.pack("<h", int(3000 * envelope * math.sin(2 * math.pi * f * t)))
        w.writeframes(bytes(frames))
    return buf.getvalue()


def write(rendered: Rendered, out: str | Path) -> Path:
    """Replace ``out`` with the rendered tree in one rename; refuses a folder it did not write."""
    target = Path(out).resolve()
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"--out {out}: a file is in the way; give a folder")
        if any(target.iterdir()) and not (target / MARKER).exists():
            raise ConfigError(f"--out {out}: the folder holds files not written by cc-core "
                              "fsconf render; give an empty or new folder (a render replaces "
                              "the whole folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for rel, data in rendered.files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created with its final mode: a secret is never readable by others, not even briefly.
            mode = 0o600 if rel in rendered.secret else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(path, mode)
        staging.chmod(0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


__all__ = ["MARKER", "MODULES", "PASSWORD_ENV", "Rendered", "SECRET_FORBIDDEN", "render", "write"]
