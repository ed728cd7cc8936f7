"""Builders for the commands cc-core sends over inbound ESL.

Every builder validates its arguments before it formats anything, and raises ``ValueError``
with a message that names the argument. The rule that matters most: no argument may hold a
control byte (LF, CR, NUL, TAB, ... DEL). ESL is line-based (MES ``read_packet``: a command
ends at an empty line, each further line is a ``Name: value`` header), so an LF inside a
caller ID would add a header to the command, and LF LF would end it and start a second
command. Caller-controlled text (caller ID names, SIP headers, DTMF input) goes through here
and can therefore never inject.

Builders return the text of the command without the ``api``/``bgapi`` prefix, e.g.
``uuid_answer <uuid>``; pass it to ``link.api(...)`` / ``link.bgapi(...)``, which check it
again with :func:`check_command`.

Originate variables (``{k=v,...}``) pass through three FreeSWITCH parsers before they become
channel variables, each splitting on its own delimiter and then unescaping with
``cleanup_separated_string`` (``src/switch_utils.c``: ``separate_string_blank_delim``,
``separate_string_char_delim``, ``cleanup_separated_string``):

1. ``originate`` (``mod_commands.c``: ``originate_function``) splits its argument on spaces;
2. ``switch_event_create_brackets`` (``src/switch_event.c``) splits the ``{...}`` block on ``,``;
3. it splits each ``k=v`` on ``=`` (at most two parts).

Each pass treats ``\\`` as an escape (``\\\\``, ``\\'``, ``\\<delim>``, ``\\s`` for a space are
decoded; other pairs are kept) and ``'`` as a quote. :func:`escape_originate_value` escapes a
value once per pass, innermost first, so the channel variable receives exactly the value
given. ``{``/``}`` cannot be escaped (``switch_find_end_paren`` counts them blindly) and
``${`` would be expanded by the switch: values holding them are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "api", "bgapi", "check_command", "check_arg", "event_plain", "filter_add", "filter_delete",
    "uuid_answer", "uuid_kill", "uuid_bridge", "uuid_transfer", "uuid_broadcast",
    "uuid_record", "uuid_setvar", "uuid_getvar", "uuid_break", "uuid_exists", "originate",
    "escape_originate_value", "execute_headers", "hangup_headers", "sendmsg",
    "show_channels_json", "sofia_contact",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_VAR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_CAUSE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
_APP = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_EVENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_API_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Event names that must never be subscribed to: ALL drags every CUSTOM event of every module
# in, and the back-pressure policy (shed HEARTBEAT & co. first) stops making sense.
_FORBIDDEN_EVENTS = {"ALL"}


def check_arg(value: str, what: str, *, allow_space: bool = True, required: bool = True) -> str:
    """Refuse control bytes (and spaces when the argument is one word of a space-split list)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{what} is empty")
    m = _CONTROL.search(value)
    if m:
        raise ValueError(
            f"{what} contains control byte {m.group()!r} at position {m.start()}: ESL commands "
            "are line-based, so a newline/CR/NUL there could inject a header or a second "
            "command; strip or reject it before building the command")
    if not allow_space and (" " in value):
        raise ValueError(f"{what} {value!r} contains a space, which would split it into two "
                         "arguments of the FreeSWITCH command")
    return value


def check_command(cmd: str, what: str = "command") -> str:
    """The whole text of an api/bgapi command: one line, no control bytes."""
    check_arg(cmd, what)
    if cmd != cmd.strip() or not cmd.strip():
        raise ValueError(f"{what} {cmd!r} has leading/trailing spaces")
    return cmd


def _uuid(value: str, what: str = "uuid") -> str:
    check_arg(value, what, allow_space=False)
    if not _UUID.match(value):
        raise ValueError(f"{what} {value!r} is not a channel UUID (letters, digits and '-')")
    return value


def _word(value: str, what: str) -> str:
    return check_arg(value, what, allow_space=False)


def _dialplan_context(dialplan: str | None, context: str | None) -> list[str]:
    """The optional ``<dialplan> [<context>]`` tail of transfer and originate (positional:
    a context cannot be given without its dialplan)."""
    out = []
    if dialplan is not None:
        out.append(_word(dialplan, "dialplan"))
    if context is not None:
        if dialplan is None:
            raise ValueError("a context needs a dialplan (e.g. XML)")
        out.append(_word(context, "context"))
    return out


def api(cmd: str) -> str:
    """The wire text of ``api <cmd>``."""
    return "api " + check_command(cmd)


def bgapi(cmd: str) -> str:
    """The wire text of ``bgapi <cmd>``."""
    return "bgapi " + check_command(cmd)


# --- subscription ---------------------------------------------------------------------------
def event_plain(events: Iterable[str]) -> str:
    """``event plain A B CUSTOM sub1 sub2``; names validated, CUSTOM subclasses placed last.

    Entries may be ``NAME`` or ``CUSTOM <subclass>`` (MES ``parse_command``: after the word
    CUSTOM every token is a subclass name, so subclasses must come after all other names).
    """
    names: list[str] = []
    subclasses: list[str] = []
    for entry in events:
        check_arg(entry, "event name")
        parts = entry.split()
        if not parts:
            raise ValueError("empty event name")
        head = parts[0].upper()
        if head in _FORBIDDEN_EVENTS:
            raise ValueError("subscribe to an explicit list of event names, not ALL")
        if head == "CUSTOM":
            for sub in parts[1:]:
                if sub not in subclasses:
                    subclasses.append(_word(sub, "CUSTOM subclass"))
            continue
        if len(parts) != 1 or not _EVENT_NAME.match(head):
            raise ValueError(f"{entry!r} is not an event name (e.g. CHANNEL_PARK)")
        if head not in names:
            names.append(head)
    if not names and not subclasses:
        raise ValueError("list at least one event name, e.g. CHANNEL_PARK")
    words = names + (["CUSTOM", *subclasses] if subclasses else [])
    return "event plain " + " ".join(words)


def filter_add(header: str, value: str) -> str:
    if not _HEADER_NAME.match(check_arg(header, "filter header", allow_space=False)):
        raise ValueError(f"filter header {header!r} is not a header name")
    return f"filter {header} {check_arg(value, 'filter value')}"


def filter_delete(header: str, value: str) -> str:
    return "filter delete " + filter_add(header, value)[len("filter "):]


# --- api commands on a channel --------------------------------------------------------------
def uuid_answer(uuid: str) -> str:
    return f"uuid_answer {_uuid(uuid)}"


def uuid_kill(uuid: str, cause: str | None = None) -> str:
    if cause is None:
        return f"uuid_kill {_uuid(uuid)}"
    if not _CAUSE.match(check_arg(cause, "hangup cause", allow_space=False)):
        raise ValueError(f"hangup cause {cause!r} is not a cause name like NORMAL_CLEARING")
    return f"uuid_kill {_uuid(uuid)} {cause}"


def uuid_bridge(uuid: str, other_uuid: str) -> str:
    return f"uuid_bridge {_uuid(uuid)} {_uuid(other_uuid, 'other_uuid')}"


def uuid_transfer(uuid: str, destination: str, dialplan: str | None = None,
                  context: str | None = None, leg: str | None = None) -> str:
    """``uuid_transfer <uuid> [-bleg|-both] <dest> [<dialplan>] [<context>]``."""
    parts = ["uuid_transfer", _uuid(uuid)]
    if leg is not None:
        if leg not in ("-bleg", "-both"):
            raise ValueError(f"leg {leg!r} must be '-bleg' or '-both'")
        parts.append(leg)
    parts.append(_word(destination, "destination"))
    parts += _dialplan_context(dialplan, context)
    return " ".join(parts)


def uuid_broadcast(uuid: str, path: str, leg: str = "aleg") -> str:
    if leg not in ("aleg", "bleg", "both"):
        raise ValueError(f"leg {leg!r} must be aleg, bleg or both")
    return f"uuid_broadcast {_uuid(uuid)} {_word(path, 'path')} {leg}"


def recording_variables(variables: Mapping[str, str]) -> str:
    """``{name=value,...}`` for uuid_record / record_session (switch_event_create_brackets;
    the switch url-decodes it first, so ``%`` is refused here)."""
    for name, value in variables.items():
        if not _VAR_NAME.match(check_arg(name, "recording variable", allow_space=False)):
            raise ValueError(f"recording variable {name!r} must be letters, digits, '_', "
                             "'.', '-'")
        if any(c in check_arg(value, "recording variable value", allow_space=False,
                              required=False) for c in ",{}=%"):
            raise ValueError(f"recording variable value {value!r} may not hold , {{ }} = or %")
    return "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}"


def uuid_record(uuid: str, action: str, path: str, limit_s: int | None = None,
                variables: Mapping[str, str] | None = None) -> str:
    if action not in ("start", "stop", "mask", "unmask"):
        raise ValueError(f"record action {action!r} must be start, stop, mask or unmask")
    cmd = f"uuid_record {_uuid(uuid)} {action} {_word(path, 'path')}"
    if limit_s is not None:
        if action != "start" or not isinstance(limit_s, int) or limit_s <= 0:
            raise ValueError("limit_s is a positive number of seconds, with action 'start'")
        cmd += f" {limit_s}"
    if variables:
        if action != "start":
            raise ValueError("recording variables go with action 'start'")
        # mod_commands.c reads them as the fifth argument: the limit comes first (0: none).
        cmd += f"{'' if limit_s is not None else ' 0'} {recording_variables(variables)}"
    return cmd


def uuid_setvar(uuid: str, name: str, value: str | None = None) -> str:
    """Set (or, with ``value=None``, unset) a channel variable; the value may hold spaces."""
    if not _VAR_NAME.match(check_arg(name, "variable name", allow_space=False)):
        raise ValueError(f"variable name {name!r} must be letters, digits, '_', '.', '-'")
    if value is None:
        return f"uuid_setvar {_uuid(uuid)} {name}"
    check_arg(value, "variable value", required=False)
    if value == "" or value != value.strip():
        raise ValueError("variable value is empty or has leading/trailing spaces, which "
                         "FreeSWITCH strips; pass value=None to unset")
    return f"uuid_setvar {_uuid(uuid)} {name} {value}"


def uuid_getvar(uuid: str, name: str) -> str:
    if not _VAR_NAME.match(check_arg(name, "variable name", allow_space=False)):
        raise ValueError(f"variable name {name!r} must be letters, digits, '_', '.', '-'")
    return f"uuid_getvar {_uuid(uuid)} {name}"


_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,64}$")


def uuid_send_dtmf(uuid: str, digits: str) -> str:
    """``uuid_send_dtmf <uuid> <digits>``: DTMF sent out of a leg (a loopback twin hears it)."""
    if not _DTMF.match(check_arg(digits, "DTMF digits", allow_space=False)):
        raise ValueError(f"DTMF digits {digits!r} must be 0-9, *, # or A-D")
    return f"uuid_send_dtmf {_uuid(uuid)} {digits}"


def sched_del(group: str) -> str:
    """``sched_del <uuid>``: delete the channel's scheduled tasks (a sched_transfer fallback
    armed by the dialplan); FreeSWITCH answers ``+OK Deleted: <n>``."""
    return f"sched_del {_uuid(group)}"


_CAUSE = re.compile(r"^[A-Z_]{1,64}$")


def sched_hangup(uuid: str, seconds: int, cause: str = "ALLOTTED_TIMEOUT") -> str:
    """``sched_hangup +<seconds> <uuid> <cause>``: the switch hangs the channel up when the
    time comes, whatever any worker does meanwhile (``+0``: at once). The task is in the
    channel's uuid group: ``sched_del <uuid>`` takes it back before re-arming."""
    if not 0 <= seconds <= 10**7:
        raise ValueError(f"sched_hangup in {seconds} s: give 0 to 10000000 seconds")
    if not _CAUSE.match(cause):
        raise ValueError(f"hang-up cause {cause!r} must be a cause name such as "
                         "ALLOTTED_TIMEOUT")
    return f"sched_hangup +{int(seconds)} {_uuid(uuid)} {cause}"


def uuid_break(uuid: str, all_: bool = False) -> str:
    return f"uuid_break {_uuid(uuid)}" + (" all" if all_ else "")


def uuid_exists(uuid: str) -> str:
    return f"uuid_exists {_uuid(uuid)}"


def show_channels_json() -> str:
    return "show channels as json"


# mod_sofia.c:sofia_contact_function splits at "~" (user-agent match), the first "/"
# (profile) and "@" (domain), then at a "/" after the domain (a prefix for each contact):
# none of them may appear inside a part.
_SOFIA_PART = re.compile(r"^[^@/~,\s]{1,128}$")


def sofia_contact(user_at_domain: str, profile: str | None = None) -> str:
    """``sofia_contact [<profile>/]<user>@<domain>``: the registered contacts of a user,
    ``sofia/<profile>/sip:...`` (several joined by ","), or ``error/user_not_registered``."""
    check_arg(user_at_domain, "user@domain", allow_space=False)
    user, at, domain = user_at_domain.partition("@")
    if not at or not _SOFIA_PART.match(user) or not _SOFIA_PART.match(domain):
        raise ValueError(f"user@domain {user_at_domain!r} must be <user>@<domain>, with no "
                         "'/', '~', ',' or second '@' (e.g. 1001@default)")
    if profile is None:
        return f"sofia_contact {user_at_domain}"
    if not _SOFIA_PART.match(check_arg(profile, "sofia profile", allow_space=False)):
        raise ValueError(f"sofia profile {profile!r} must be one word without '/' or '@' "
                         "(e.g. internal)")
    return f"sofia_contact {profile}/{user_at_domain}"


# --- originate ------------------------------------------------------------------------------
def _escape_pass(value: str, specials: Mapping[str, str]) -> str:
    return "".join(specials.get(c, c) for c in value)


# Innermost pass first: what switch_event_create_brackets' `=` split must see, then its `,`
# split, then originate_function's space split (see the module docstring).
_PASS_EQUALS = {"\\": "\\\\", "'": "\\'", " ": "\\s"}
_PASS_COMMA = {"\\": "\\\\", "'": "\\'", ",": "\\,"}
_PASS_SPACE = {"\\": "\\\\", "'": "\\'", " ": "\\s"}


def escape_originate_value(value: str, what: str = "originate variable") -> str:
    """Escape a value for an originate ``{k=v}`` block so the channel variable equals it."""
    check_arg(value, what, required=False)
    if "${" in value:
        raise ValueError(f"{what} {value!r} holds '${{', which FreeSWITCH would expand as a "
                         "variable or api call")
    if "{" in value or "}" in value:
        raise ValueError(f"{what} {value!r} holds '{{' or '}}', which FreeSWITCH cannot escape "
                         "inside a {...} variable block")
    if ":_:" in value:
        # switch_ivr_enterprise_originate splits the whole originate argument on ':_:' before
        # any {} block is read (tests/data/originate_escaping.json: the call failed).
        raise ValueError(f"{what} {value!r} holds ':_:', which FreeSWITCH reads as an "
                         "enterprise-originate separator; no escaping survives it")
    out = _escape_pass(value, _PASS_EQUALS)
    out = _escape_pass(out, _PASS_COMMA)
    return _escape_pass(out, _PASS_SPACE)


def originate(endpoint: str, *, variables: Mapping[str, str] | None = None,
              app: str | None = "park", app_arg: str = "", extension: str | None = None,
              dialplan: str | None = None, context: str | None = None) -> str:
    """``originate {k=v,...}<endpoint> &<app>(<arg>)`` or ``... <extension> [dialplan] [ctx]``.

    ``endpoint`` is a dial string such as ``user/1000`` or ``sofia/gateway/gw/400...``; its
    own syntax (``,`` ring-all, ``|`` failover, ``[...]`` per-leg variables) is passed as is,
    so it must come from configuration, never from a caller. Variable values may come from a
    caller (caller ID names): they are escaped with :func:`escape_originate_value`.
    """
    _word(endpoint, "endpoint")
    if endpoint.startswith("{"):
        raise ValueError("pass originate variables in `variables`, not inside the endpoint")
    block = ""
    if variables:
        items = []
        for name, value in variables.items():
            if not _VAR_NAME.match(check_arg(name, "originate variable name", allow_space=False)):
                raise ValueError(f"originate variable name {name!r} must be letters, digits, "
                                 "'_', '.', '-'")
            items.append(f"{name}={escape_originate_value(str(value), f'variable {name}')}")
        block = "{" + ",".join(items) + "}"
    target = block + endpoint
    if extension is not None:
        if app not in (None, "park") or app_arg:
            raise ValueError("give either an application or an extension, not both")
        parts = [target, _word(extension, "extension"), *_dialplan_context(dialplan, context)]
        return "originate " + " ".join(parts)
    if app is None or not _APP.match(app):
        raise ValueError(f"application {app!r} must be a lower-case app name such as park")
    check_arg(app_arg, "application argument", allow_space=False, required=False)
    if "(" in app_arg or ")" in app_arg:
        raise ValueError("application argument may not hold parentheses")
    return f"originate {target} &{app}({app_arg})"


# --- sendmsg ----------------------------------------------------------------------------------
def execute_headers(app: str, arg: str | None = None, *, event_uuid: str | None = None,
                    loops: int | None = None, event_lock: bool = False) -> dict[str, str]:
    """Headers of ``sendmsg`` ``call-command: execute``; ``Event-UUID`` comes back as
    ``Application-UUID`` on the app's CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE."""
    if not _APP.match(check_arg(app, "application name", allow_space=False)):
        raise ValueError(f"application {app!r} must be a lower-case app name such as playback")
    headers = {"call-command": "execute", "execute-app-name": app}
    if arg is not None:
        headers["execute-app-arg"] = check_arg(arg, "application argument")
    if loops is not None:
        if not isinstance(loops, int) or loops < 1:
            raise ValueError("loops must be a positive integer")
        headers["loops"] = str(loops)
    if event_lock:
        headers["event-lock"] = "true"
    if event_uuid is not None:
        headers["Event-UUID"] = _word(event_uuid, "event_uuid")
    return headers


def hangup_headers(cause: str = "NORMAL_CLEARING") -> dict[str, str]:
    if not _CAUSE.match(check_arg(cause, "hangup cause", allow_space=False)):
        raise ValueError(f"hangup cause {cause!r} is not a cause name like NORMAL_CLEARING")
    return {"call-command": "hangup", "hangup-cause": cause}


def sendmsg(uuid: str, headers: Mapping[str, str]) -> str:
    """The full multi-line ``sendmsg <uuid>`` command (without the final empty line)."""
    if not headers:
        raise ValueError("sendmsg needs at least a call-command header")
    lines = [f"sendmsg {_uuid(uuid)}"]
    for name, value in headers.items():
        if not _HEADER_NAME.match(check_arg(name, "sendmsg header name", allow_space=False)):
            raise ValueError(f"sendmsg header name {name!r} is not a header name")
        check_arg(str(value), f"sendmsg header {name}", required=False)
        lines.append(f"{name}: {value}")
    return "\n".join(lines)
