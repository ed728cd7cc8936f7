"""Convert a mod_callcenter configuration (``callcenter.conf.xml``) into a tenant YAML file.

Pure: text in, text and warnings out; no Redis, no files (``cc-core queue import`` does the I/O).

What is read, as mod_callcenter (FreeSWITCH 1.10) reads it:
- ``<configuration name="callcenter.conf">``, alone or inside a whole ``freeswitch.xml``;
- ``<settings>``: only ``agent-originate-timeout`` (how long an agent's phone rings, 60 s when
  absent) matters here; it becomes every queue's ``ring_timeout_s``;
- ``<queues><queue name=...><param name=... value=.../>``: each known param onto the ``Queue``
  field that does the same; a param left out gets *mod_callcenter's* default written out
  where it differs from ours (``tier-rule-no-agent-no-wait`` is true there, for instance), so
  the imported queue behaves as it did on the switch;
- ``<agents><agent name= type= contact= .../>``: an agent without ``type`` is skipped, as
  mod_callcenter skips it; absent numbers are 0 there (no wrap-up, no delays, never put On
  Break), and so here;
- ``<tiers><tier agent= queue= level= position=/>``: level and position default to 1; a tier
  naming an agent or queue that is not defined is skipped.

Queue names lose their ``@domain`` (``support@default`` -> ``support``): the tenant is the
domain. The tenant id is ``--tenant``, or that domain when every queue has the same one.

Anything the project does differently (an agent's status, recording, external-call checks,
the switch's database settings) is not imported; each is reported as a warning naming the
param and what the project does instead. The output is deterministic (same input, same bytes),
lists only what differs from the project's defaults, and loads with ``cc_core.tenants.loader``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from cc_core.errors import ConfigError
from cc_core.tenants.model import (
    AGENT_ID,
    TENANT_ID,
    AgentStatus,
    Destination,
    Strategy,
    Tenant,
)

# mod_callcenter's own defaults where they differ from the project's model.
ORIGINATE_TIMEOUT_S = 60        # settings: agent-originate-timeout
NOT_REGISTERED_DELAY_S = 5      # fixed in mod_callcenter for USER_NOT_REGISTERED
QUEUE_DEFAULTS: dict[str, Any] = {
    "tier_rule_wait_s": 0,
    "tier_rule_wait_multiply_level": False,
    "tier_rule_no_agent_no_wait": True,
}

# name in the XML -> (Queue field, kind, low, high); kind: int / bool / str
_QUEUE_PARAMS: dict[str, tuple[str, str, int, int]] = {
    "time-base-score": ("time_base_score", "str", 0, 0),
    "ring-progressively-delay": ("ring_progressively_delay_s", "int", 1, 120),
    "tier-rules-apply": ("tier_rules_apply", "bool", 0, 0),
    "tier-rule-wait-second": ("tier_rule_wait_s", "int", 0, 3600),
    "tier-rule-wait-multiply-level": ("tier_rule_wait_multiply_level", "bool", 0, 0),
    "tier-rule-no-agent-no-wait": ("tier_rule_no_agent_no_wait", "bool", 0, 0),
    "discard-abandoned-after": ("discard_abandoned_after_s", "int", 0, 86_400),
    "abandoned-resume-allowed": ("abandoned_resume_allowed", "bool", 0, 0),
    "max-wait-time": ("max_wait_s", "int", 0, 86_400),
    "max-wait-time-with-no-agent": ("max_wait_no_agent_s", "int", 0, 86_400),
    "max-wait-time-with-no-agent-time-reached": ("max_wait_no_agent_reached_s", "int", 0, 3600),
}
# Handled one by one below.
_SPECIAL_QUEUE_PARAMS = {"strategy", "moh-sound", "announce-sound", "announce-frequency",
                         "agent-no-answer-status"}
# Params the project does not take, and what it does instead.
_UNSUPPORTED_QUEUE_PARAMS = {
    "record-template": "recording is set by the project's recording policy (recordings/), "
                       "not per queue",
    "skip-agents-with-external-calls": "the ACD offers queue calls to agents it holds as "
                                       "free; it does not look for their other calls",
}
_SETTINGS = {
    "agent-originate-timeout": "",
    "odbc-dsn": "the ACD's state lives in Redis; there is no database to configure",
    "dbname": "the ACD's state lives in Redis; there is no database to configure",
    "cc-instance-id": "every worker shares the ACD in Redis; there are no instances",
    "global-database-lock": "the ACD's scripts are atomic in Redis; there is no lock to set",
    "reserve-agents": "the ACD always reserves an agent before offering a call",
    "truncate-tiers-on-load": "`cc-core config apply` replaces a tenant's tiers whole",
    "truncate-agents-on-load": "`cc-core config apply` replaces a tenant's agents whole",
    "debug": "logging is set on the workers (cc-core run), not here",
}
_AGENT_ATTRS = {"name", "type", "contact", "status", "max-no-answer", "wrap-up-time",
                "reject-delay-time", "busy-delay-time", "no-answer-delay-time"}
_TRUE = {"yes", "on", "true", "t", "enabled", "active", "allow"}
_FALSE = {"no", "off", "false", "f", "disabled", "inactive", "disallow"}
_VARIABLE = re.compile(r"\$\$?\{")


@dataclass(frozen=True)
class Imported:
    tenant: Tenant
    text: str                          # the tenant YAML, loadable by cc_core.tenants.loader
    warnings: tuple[str, ...] = ()


@dataclass
class _Run:
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def number(self, raw: str, where: str, default: int, low: int, high: int) -> int:
        text = raw.strip()
        if not re.fullmatch(r"-?\d+", text):
            self.warn(f"{where}: {raw!r} is not a whole number; using {default}")
            return default
        value = int(text)
        if not low <= value <= high:
            kept = min(max(value, low), high)
            self.warn(f"{where}: {value} is outside what cc-core accepts ({low} to {high}); "
                      f"using {kept}")
            return kept
        return value

    def flag(self, raw: str, where: str, default: bool) -> bool:
        text = raw.strip().lower()
        if text in _TRUE or (re.fullmatch(r"-?\d+", text) is not None and int(text) != 0):
            return True
        if text in _FALSE or text == "0":
            return False
        self.warn(f"{where}: {raw!r} is neither true nor false; using "
                  f"{'true' if default else 'false'} (mod_callcenter's default)")
        return default


def _configuration(root: ET.Element) -> ET.Element | None:
    for el in root.iter("configuration"):
        if el.get("name") == "callcenter.conf":
            return el
    return None


def _children(parent: ET.Element | None, section: str, tag: str) -> Iterator[ET.Element]:
    if parent is None:
        return iter(())
    sect = parent.find(section)
    return iter(()) if sect is None else sect.iter(tag)


def _params(el: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name", ""), p.get("value", "")) for p in el.findall("param")]


def _queue_names(names: list[str], tenant: str | None, run: _Run) -> tuple[dict[str, str], str]:
    """XML queue name -> cc-core queue name, and the tenant id."""
    domains = {n.partition("@")[2] for n in names}
    if tenant is None:
        only = next(iter(domains)) if len(domains) == 1 else ""
        if not only or not re.match(TENANT_ID, only):
            raise ConfigError(
                "cannot tell which tenant these queues belong to (their @domain parts: "
                f"{', '.join(sorted(d or '(none)' for d in domains)) or 'no queues'}); "
                "pass --tenant ID (lower-case letters, digits, _ or -)")
        tenant = only
    elif not re.match(TENANT_ID, tenant):
        raise ConfigError(f"--tenant {tenant!r}: a tenant id is 1-32 lower-case letters, "
                          "digits, _ or -, starting with a letter or digit")
    return _short_names(names, "queue", run), tenant


def _short_names(names: list[str], what: str, run: _Run) -> dict[str, str]:
    """Each name without its ``@domain``, unless that makes two names one."""
    short = [n.partition("@")[0] for n in names]
    out = {}
    for name, cut in zip(names, short, strict=True):
        if short.count(cut) > 1:
            run.warn(f"{what} {name!r} keeps its @domain: another {what} is also named "
                     f"{cut!r} in another domain")
            out[name] = name
        else:
            out[name] = cut
    return out


def _agent_status(raw: str) -> AgentStatus | None:
    for status in AgentStatus:
        if status.value.lower() == raw.strip().lower():
            return status
    return None


def convert(xml_text: str | bytes, *, tenant: str | None = None,
            source: str = "callcenter.conf.xml") -> Imported:
    """The tenant config equivalent to ``xml_text``; ``ConfigError`` if it cannot be read."""
    run = _Run()
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ConfigError(f"{source}: not well-formed XML ({exc}); fix the file or give "
                          "the callcenter.conf.xml the switch loads") from None
    conf = _configuration(root)
    if conf is None:
        raise ConfigError(f"{source}: no <configuration name=\"callcenter.conf\"> in it; give "
                          "mod_callcenter's file (autoload_configs/callcenter.conf.xml)")

    # -- settings ----------------------------------------------------------------------------
    ring_timeout = ORIGINATE_TIMEOUT_S
    settings = conf.find("settings")
    for name, value in _params(settings) if settings is not None else []:
        if name not in _SETTINGS:
            run.warn(f"settings: unknown param {name!r} is not imported (mod_callcenter does "
                     "not know it either)")
        elif name == "agent-originate-timeout":
            ring_timeout = run.number(value, "settings: agent-originate-timeout",
                                      ORIGINATE_TIMEOUT_S, 5, 120)
        else:
            run.warn(f"settings: {name} is not imported: {_SETTINGS[name]}")

    # -- queues ------------------------------------------------------------------------------
    xml_queues: list[tuple[str, ET.Element]] = []
    for q in _children(conf, "queues", "queue"):
        qname = (q.get("name") or "").strip()
        if not qname:
            run.warn("a <queue> without a name is skipped")
        elif qname in (n for n, _ in xml_queues):
            run.warn(f"queue {qname!r} is defined twice; the first is kept (as mod_callcenter "
                     "does)")
        else:
            xml_queues.append((qname, q))
    names, tenant_id = _queue_names([n for n, _ in xml_queues], tenant, run)

    prompts: dict[str, str] = {}
    queues: dict[str, dict[str, Any]] = {}
    no_answer_status: dict[str, AgentStatus] = {}   # queue -> its agents' status after misses
    for qname, q in xml_queues:
        name = names[qname]
        where = f"queue {qname!r}"
        out: dict[str, Any] = {**QUEUE_DEFAULTS, "ring_timeout_s": ring_timeout, "tiers": []}
        announce_sound = ""
        announce_every = 0
        seen: set[str] = set()
        for pname, value in _params(q):
            at = f"{where}: param {pname!r}"
            if pname in seen:
                run.warn(f"{at} is written twice; the last one is kept")
            seen.add(pname)
            if pname in _QUEUE_PARAMS:
                target, kind, low, high = _QUEUE_PARAMS[pname]
                if kind == "int" and target == "ring_progressively_delay_s" \
                        and value.strip() == "0":
                    out[target] = 10  # mod_callcenter: 0 (unset) rings the next after 10 s
                elif kind == "int":
                    out[target] = run.number(value, at, _queue_default(target), low, high)
                elif kind == "bool":
                    out[target] = run.flag(value, at, bool(_queue_default(target)))
                elif value.strip().lower() in ("queue", "system"):
                    out[target] = value.strip().lower()
                else:
                    run.warn(f"{at}: {value!r} is neither queue nor system; using queue")
            elif pname == "strategy":
                try:
                    out["strategy"] = Strategy(value.strip().lower()).value
                except ValueError:
                    run.warn(f"{at}: unknown strategy {value!r}; using longest-idle-agent "
                             f"(cc-core knows {', '.join(s.value for s in Strategy)})")
            elif pname == "moh-sound":
                if _VARIABLE.search(value):
                    run.warn(f"{at}: {value!r} is a switch variable cc-core cannot expand; "
                             f"queues.{name}.moh keeps the default (local_stream://moh): "
                             "write the sound itself there")
                elif value.strip():
                    out["moh"] = value.strip()
            elif pname == "announce-sound":
                announce_sound = value.strip()
            elif pname == "announce-frequency":
                announce_every = run.number(value, at, 0, 0, 86_400)
            elif pname == "agent-no-answer-status":
                status = _agent_status(value)
                if status is None:
                    run.warn(f"{at}: {value!r} is not an agent status; using On Break "
                             "(as mod_callcenter does)")
                    status = AgentStatus.ON_BREAK
                no_answer_status[name] = status
            elif pname in _UNSUPPORTED_QUEUE_PARAMS:
                run.warn(f"{at} is not imported: {_UNSUPPORTED_QUEUE_PARAMS[pname]}")
            else:
                run.warn(f"{at} is unknown to mod_callcenter and cc-core; not imported")
        if announce_sound and announce_every:
            if _VARIABLE.search(announce_sound):
                run.warn(f"{where}: announce-sound {announce_sound!r} is a switch variable "
                         "cc-core cannot expand; no periodic announcement imported: write "
                         f"the sound under prompts and name it in queues.{name}.announce")
            else:
                every = announce_every
                if not 5 <= every <= 3600:
                    every = min(max(every, 5), 3600)
                    run.warn(f"{where}: announce-frequency {announce_every} is outside what "
                             f"cc-core accepts (5 to 3600 s); using {every}")
                prompt = f"{name}_announce"
                prompts[prompt] = announce_sound
                out["announce"] = {"prompt": prompt, "every_s": every}
        elif announce_sound:
            run.warn(f"{where}: announce-sound without announce-frequency is never played by "
                     "mod_callcenter; not imported")
        queues[name] = out

    # -- agents ------------------------------------------------------------------------------
    agents: dict[str, dict[str, Any]] = {}
    for a in _children(conf, "agents", "agent"):
        aid = (a.get("name") or "").strip()
        where = f"agent {aid!r}"
        if not aid:
            run.warn("an <agent> without a name is skipped")
            continue
        if not re.match(AGENT_ID, aid):
            run.warn(f"{where} is skipped: cc-core agent ids are 1-64 letters, digits, _ . @ -")
            continue
        if aid in agents:
            run.warn(f"{where} is defined twice; the first is kept")
            continue
        kind = (a.get("type") or "").strip().lower()
        if kind not in ("callback", "uuid-standby"):
            run.warn(f"{where} is skipped: its type ({a.get('type') or 'none given'}) is "
                     "neither callback nor uuid-standby (mod_callcenter skips it too)")
            continue
        contact = (a.get("contact") or "").strip()
        if not contact:
            run.warn(f"{where} is skipped: it has no contact; cc-core needs the dial string "
                     "(or, for uuid-standby, the parked uuid) in agents.<id>.contact")
            continue
        agent: dict[str, Any] = {
            "contact": contact, "type": kind,
            "max_no_answer": run.number(a.get("max-no-answer", "0"), f"{where}: max-no-answer",
                                        0, 0, 100),
            "wrap_up_s": run.number(a.get("wrap-up-time", "0"), f"{where}: wrap-up-time",
                                    0, 0, 3600),
            "reject_delay_s": run.number(a.get("reject-delay-time", "0"),
                                         f"{where}: reject-delay-time", 0, 0, 3600),
            "busy_delay_s": run.number(a.get("busy-delay-time", "0"),
                                       f"{where}: busy-delay-time", 0, 0, 3600),
            "no_answer_delay_s": run.number(a.get("no-answer-delay-time", "0"),
                                            f"{where}: no-answer-delay-time", 0, 0, 3600),
            "not_registered_delay_s": NOT_REGISTERED_DELAY_S,
        }
        initial = a.get("status")
        if initial is not None and _agent_status(initial) is not AgentStatus.LOGGED_OUT:
            run.warn(f"{where}: status {initial!r} is not imported: in cc-core an agent's "
                     "status is live state, not config; log the agent in with `cc-core agent "
                     "login` or the API (imported agents start Logged Out)")
        for attr in sorted(set(a.attrib) - _AGENT_ATTRS):
            run.warn(f"{where}: attribute {attr!r} is unknown to mod_callcenter and cc-core; "
                     "not imported")
        agents[aid] = agent

    # -- tiers ------------------------------------------------------------------------------
    ids = _short_names(list(agents), "agent", run)
    tiers: dict[tuple[str, str], dict[str, Any]] = {}
    for t in _children(conf, "tiers", "tier"):
        ax = (t.get("agent") or "").strip()
        qx = (t.get("queue") or "").strip()
        where = f"tier {ax!r} in {qx!r}"
        if ax not in agents:
            run.warn(f"{where} is skipped: no imported agent {ax!r}")
            continue
        if qx not in names:
            run.warn(f"{where} is skipped: no queue {qx!r}")
            continue
        if (names[qx], ax) in tiers:
            run.warn(f"{where} is written twice; the last one is kept (as mod_callcenter "
                     "does)")
        tiers[(names[qx], ax)] = {
            "agent": ids[ax],
            "level": run.number(t.get("level") or "1", f"{where}: level", 1, 0, 100),
            "position": run.number(t.get("position") or "1", f"{where}: position",
                                   1, 0, 10_000)}
    for (qname, _), tier in sorted(tiers.items(), key=lambda kv: (
            kv[0][0], kv[1]["level"], kv[1]["position"], kv[1]["agent"])):
        queues[qname]["tiers"].append(tier)

    # mod_callcenter applies a queue's agent-no-answer-status to misses of that queue's calls;
    # cc-core has one per agent: the status of the queue where the agent's tier is best
    # (lowest level, then position, then queue name).
    for ax in agents:
        mine = sorted((tier["level"], tier["position"], qname)
                      for (qname, a), tier in tiers.items() if a == ax)
        statuses = {no_answer_status.get(q, AgentStatus.ON_BREAK) for _, _, q in mine}
        if not mine:
            continue
        chosen = no_answer_status.get(mine[0][2], AgentStatus.ON_BREAK)
        agents[ax]["no_answer_status"] = chosen.value
        if len(statuses) > 1:
            run.warn(f"agent {ax!r}: its queues set different agent-no-answer-status "
                     f"({', '.join(sorted(s.value for s in statuses))}); cc-core has one per "
                     f"agent: {chosen.value!r} from {mine[0][2]!r}, where its tier is best")
    agents = {ids[ax]: agent for ax, agent in agents.items()}

    # The first queue as written: where a call goes until the tenant has menus.
    entry = f"queue:{names[xml_queues[0][0]]}" if xml_queues else "hangup"
    data = {"tenant": tenant_id, "entry": entry, "numbers": {}, "prompts": prompts,
            "agents": agents, "queues": queues}
    try:
        model = Tenant.model_validate(data)
    except ValidationError as exc:  # a value our checks let through: say which, refuse
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"{source}: the converted tenant does not validate: {problems}; "
                          "fix these in the XML (or the output) by hand") from None
    return Imported(tenant=model, text=_render(model, source, run.warnings),
                    warnings=tuple(run.warnings))


def _queue_default(target: str) -> Any:
    if target in QUEUE_DEFAULTS:
        return QUEUE_DEFAULTS[target]
    from cc_core.tenants.model import Queue

    return Queue.model_fields[target].default


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"kind", "target"}:
            return str(Destination.model_validate(value))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _render(model: Tenant, source: str, warnings: list[str]) -> str:
    """Only what differs from cc-core's defaults, in the model's key order."""
    data = _plain(model.model_dump(mode="json", exclude_defaults=True))
    for section in ("agents", "queues", "prompts"):
        if section in data:
            data[section] = dict(sorted(data[section].items()))
    head = [f"# Tenant {model.tenant}, converted from {source} by `cc-core queue import`.",
            "# Add the tenant's 400 numbers under numbers:, its menus, hours and prompts; then",
            "# check with `cc-core config validate` and apply with `cc-core config apply`."]
    if warnings:
        head.append("# Not imported (see each line):")
        head += [f"#   - {w}" for w in warnings]
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)
    return "\n".join(head) + "\n" + body
