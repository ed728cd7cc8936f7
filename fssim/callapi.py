"""Channel api commands (``api``/``bgapi``) and the ``sim_*`` simulation controls.

Reply texts are FreeSWITCH's: captured ones (``command_replies.json``: uuid_kill usage and
bogus uuid, originate failures, ``show channels as json`` empty/busy, uuid_getvar) and the
others from mod_commands.c (function named next to each handler).

Simulation controls (names FreeSWITCH does not use; replies ``+OK ...``/``-ERR ...``/
``-USAGE: ...``, each fires the usual API event, all work as bgapi too):

* ``sim_inbound <caller> <dnis> [name=value ...]`` -> ``+OK <uuid>`` before the first event:
  a SIP call from ``caller``; ``^400\\d{7}$`` runs one ``set`` per name=value then parks,
  anything else ends NO_ROUTE_DESTINATION. ``caller_id_name=`` and ``sip_h_X-...=`` are SIP
  level (caller id name / custom header variable). Refused with ``-ERR Maximum Calls In
  Progress`` at ``--max-sessions``.
* ``sim_dtmf <uuid> <digits>``: RFC 2833 digits, 100 ms apart (simulated); answered legs only.
* ``sim_hangup <uuid> [cause]``: the far end hangs up (default ORIGINATOR_CANCEL before
  answer, NORMAL_CLEARING after).
* ``sim_endpoint <contact> <answer|busy|noanswer|reject|unregistered> [delay_ms] [talk_ms]``:
  what originates to ``contact`` (dial string without ``{}``/``[]`` blocks) meet from now on.
  ``answer <delay> 0`` answers and hangs up at once (a BYE right after the 200 OK);
  ``answer <delay>`` without talk_ms talks until the switch side ends the call (uuid_kill,
  the bridged leg hanging up): a phone that never sends BYE.
* ``sim_register <user>@<domain> [expires_s] [contact]`` -> ``+OK <user>@<domain> registered
  <contact uri> <expires_s>``: the phone REGISTERs (default 300 s, sofia's default when no
  Expires is sent; contact ``[sip:]user@host[:port][;params]``, default
  ``sip:<user>@127.0.0.1:5070``) and must refresh before ``expires_s`` + 60 s or it expires
  with ``sofia::expire`` (fssim.registrations). Once registered, the user exists in the
  simulated directory: ``user/<user>@<domain>`` then follows its sim_endpoint script while
  registered and fails USER_NOT_REGISTERED while not.
* ``sim_unregister <user>@<domain>`` -> ``+OK <user>@<domain> unregistered``: a REGISTER
  with Expires 0 (``sofia::unregister``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent

from fssim.channels import Channel, parse_cause
from fssim.coredb import CoreDb
from fssim.endpoints import BEHAVIOURS, Behaviour
from fssim.fsstrings import split_blank
from fssim.registrations import parse_contact

if TYPE_CHECKING:
    from fssim.engine import Engine
    from fssim.switch import ApiRequest, Switch

log = logging.getLogger(__name__)

NO_CHANNEL = "-ERR No such channel!\n"  # command_replies.json: uuid_kill_nonexistent
ORIGINATE_SYNTAX = ("<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] "
                    "[<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]")
DTMF_DIGITS = re.compile(r"^[0-9*#A-Da-d]+$")


def _atol(text: str) -> int:
    """C's atol: leading blanks, a sign, the digits that follow; 0 when there are none."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def usage(syntax: str) -> str:
    return f"-USAGE: {syntax}\n"


class ChannelApi:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.db = CoreDb(engine.switch, self._row_of, engine.switch.db_lag_ms / 1000.0)

    def _row_of(self, uid: str) -> dict[str, str] | None:
        ch = self.engine.channels.get(uid)
        return self._row(ch) if ch is not None else None

    def live(self, uid: str) -> Channel | None:
        ch = self.engine.channels.get(uid)
        if ch is None or ch.reported.is_set():
            return None
        return ch

    # ---- uuid_* ------------------------------------------------------------------------
    def uuid_answer(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_answer_function: ``+OK``, and a bare ``-ERROR`` for a missing
        uuid, an unknown one or a failed answer (1.10 source, no usage text)."""
        uid = req.args
        ch = self.live(uid.split()[0]) if uid else None
        if ch is None or not ch.alive:
            return "-ERROR\n"
        self.engine.mark_answered(ch)
        return "+OK\n"

    def uuid_kill(self, req: ApiRequest) -> str:
        """mod_commands.c:kill_function; usage and bogus-uuid texts are captured."""
        text = req.args
        if not text:
            return usage("<uuid> [cause]")
        uid, _, cause_text = text.partition(" ")
        ch = self.live(uid)
        if ch is None or not ch.alive:
            return NO_CHANNEL
        cause = parse_cause(cause_text) if cause_text.strip() else "NORMAL_CLEARING"
        self.engine.hangup(ch, cause or "NORMAL_CLEARING")
        return "+OK\n"

    def uuid_bridge(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_bridge_function: ``+OK <other>`` (captured)."""
        parts = req.args.split()
        if len(parts) < 2:
            return usage("<uuid> <other_uuid>")
        a, b = self.live(parts[0]), self.live(parts[1])
        if a is None or b is None or not a.alive or not b.alive or a is b:
            return "-ERR Invalid uuid\n"
        self.engine.request_uuid_bridge(a, b)
        return f"+OK {b.uuid}\n"

    def uuid_transfer(self, req: ApiRequest) -> str:
        """mod_commands.c:transfer_function."""
        syntax = "<uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]"
        parts = req.args.split()
        if len(parts) < 2 or len(parts) > 5:
            return usage(syntax)
        ch = self.live(parts[0])
        if ch is None or not ch.alive:
            return NO_CHANNEL
        dest = parts[1]
        dialplan_name = parts[2] if len(parts) > 2 else "XML"
        targets = [ch]
        if dest.startswith("-"):
            if len(parts) < 3:
                return usage(syntax)
            flag, dest = dest[1:], parts[2]
            dialplan_name = parts[3] if len(parts) > 3 else "XML"
            other = ch.other if ch.bridged_side else None
            if flag == "bleg" and other is not None:
                targets = [other]
            elif flag == "both" and other is not None:
                targets = [ch, other]
        for target in targets:
            target.bridge_request = ("transfer", dest, dialplan_name)
            target.wake()
        return "+OK\n"

    def uuid_broadcast(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_broadcast_function (queues a playback, like sendmsg):
        ``+OK Message sent`` / ``-ERR invalid uuid``."""
        parts = req.args.split()
        if len(parts) < 2:
            return usage("<uuid> <path> [aleg|bleg|holdb|both]")
        ch = self.live(parts[0])
        if ch is None or not ch.alive:
            return "-ERR invalid uuid\n"
        legs = parts[2] if len(parts) > 2 else "aleg"
        targets = []
        if legs in ("aleg", "both"):
            targets.append(ch)
        if legs in ("bleg", "both", "holdb") and ch.other is not None:
            targets.append(ch.other)
        path = parts[1]
        app, _, arg = path.partition("::")
        for target in targets:
            if arg:
                body = [("call-command", "execute"), ("execute-app-name", app),
                        ("execute-app-arg", arg)]
            else:
                body = [("call-command", "execute"), ("execute-app-name", "playback"),
                        ("execute-app-arg", path)]
            target.break_pending = True
            target.signal.set()
            self.engine.queue_sendmsg(target.uuid, body, None)
        return "+OK Message sent\n"

    def uuid_record(self, req: ApiRequest) -> str:
        """mod_commands.c:session_record_function: ``+OK Success`` (captured)."""
        syntax = "<uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]"
        # switch_separate_string(' ', argv[5]): the fifth keeps the rest of the line
        parts = req.args.split(None, 4)
        if len(parts) < 3:
            return usage(syntax)
        ch = self.live(parts[0])
        if ch is None or not ch.alive:
            return "-ERR Cannot locate session!\n"
        from fssim import apps

        action, path = parts[1].lower(), parts[2]
        if action == "start":
            variables = apps.recording_vars(parts[4] if len(parts) > 4 else None)
            if not apps.start_record(self.engine, ch, path, variables):
                return "-ERR Cannot record session!\n"
            return "+OK Success\n"
        if action == "stop":
            paths = list(ch.recording) if path == "all" else [path]
            if not any(p in ch.recording for p in paths):
                return "-ERR Cannot stop record session!\n"
            for p in paths:
                apps.stop_record(self.engine, ch, p)
            return "+OK Success\n"
        if action in ("mask", "unmask"):
            return "+OK Success\n"
        return usage(syntax)

    def uuid_setvar(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_setvar_function (two args unset the variable)."""
        parts = req.args.split(" ", 2)
        if len(parts) < 2 or not parts[0]:
            return usage("<uuid> <var> [value]")
        ch = self.live(parts[0])
        if ch is None:
            return NO_CHANNEL
        name = parts[1]
        if not name:
            return "-ERR No variable specified\n"
        if len(parts) == 3 and parts[2] != "":
            ch.variables[name] = parts[2]
        else:
            ch.variables.pop(name, None)
        return "+OK\n"

    def uuid_getvar(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_getvar_function: the bare value (captured) or _undef_."""
        parts = req.args.split()
        if len(parts) < 2:
            return usage("<uuid> <var>")
        ch = self.live(parts[0])
        if ch is None:
            return NO_CHANNEL
        value = ch.variables.get(parts[1])
        return "_undef_" if value is None else value

    def uuid_exists(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_exists_function (no usage text: empty -> false)."""
        uid = req.args
        return "true" if uid and self.live(uid) is not None else "false"

    def uuid_break(self, req: ApiRequest) -> str:
        """mod_commands.c:break_function."""
        parts = req.args.split()
        if not parts:
            return usage("<uuid> [all]")
        ch = self.live(parts[0])
        if ch is None:
            return NO_CHANNEL
        ch.break_pending = True
        ch.signal.set()
        return "+OK\n"

    def uuid_send_dtmf(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_send_dtmf_function; reply text as captured
        (loopback_selftest). Digits sent out of a loopback leg arrive on its twin."""
        parts = req.args.split()
        if len(parts) < 2:
            return usage("<uuid> <dtmf_data>")
        ch = self.live(parts[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        digits = parts[1]
        # switch_core_session.c:switch_core_session_send_dtmf notes the duration on the
        # sending leg (loopback_selftest: 500, the default for uuid_send_dtmf)
        ch.variables["last_dtmf_duration"] = "500"
        twin = ch.partner
        if twin is not None and twin.alive:
            self.engine.spawn(self.engine.feed_dtmf, twin, digits, "UNKNOWN")
        return f"+OK {ch.uuid} sent DTMF {digits}.\n"

    def sched_hangup(self, req: ApiRequest) -> str:
        """mod_commands.c:sched_hangup_function, ``[+]<time> <uuid> [<cause>]``: the channel
        must exist now (``-ERR No such channel!``); ``+0`` (any first word whose digits after
        its first character read as 0, as atol does) hangs up at once; otherwise
        switch_ivr_schedule_hangup (switch_ivr_async.c) adds a task in the channel's uuid
        group, so ``sched_del <uuid>`` removes it. ``+N`` is due at the switch's whole epoch
        second now + N (the scheduler's one-second resolution); an absolute time is read on
        the simulator's clock, as ``sched_transfer`` reads it. Cause default
        ALLOTTED_TIMEOUT; an unknown name is switch_channel_str2cause's NONE."""
        parts = req.args.split()
        if not parts or not parts[0]:
            return usage("[+]<time> <uuid> [<cause>]")
        ch = self.live(parts[1]) if len(parts) > 1 else None
        if ch is None or not ch.alive:
            return NO_CHANNEL
        cause = "ALLOTTED_TIMEOUT"
        if len(parts) > 2:
            cause = parse_cause(parts[2]) or "NONE"
        sec = _atol(parts[0][1:])
        if sec == 0:
            self.engine.hangup(ch, cause)
            return "+OK\n"
        now = self.engine.clock.now()
        when = math.floor(now) + sec if parts[0].startswith("+") else _atol(parts[0])

        def fire() -> None:
            if ch.alive:
                self.engine.hangup(ch, cause)

        self.engine.schedule(ch.uuid, max(0.0, when - now), fire)
        return "+OK\n"

    def sched_del(self, req: ApiRequest) -> str:
        """mod_commands.c:sched_del_function: a task id (digits) or a group name."""
        key = req.args.strip()
        if not key:
            return "-ERR Invalid syntax\n"
        return f"+OK Deleted: {self.engine.unschedule(key)}\n"

    def uuid_dump(self, req: ApiRequest) -> str:
        """mod_commands.c:uuid_dump_function (json and plain formats)."""
        parts = req.args.split()
        if not parts:
            return usage("<uuid> [format]")
        ch = self.live(parts[0])
        if ch is None:
            return NO_CHANNEL
        fmt = parts[1] if len(parts) > 1 else "txt"
        # uuid_dump_function creates a CHANNEL_DATA event (switch_event_create: the standard
        # block, numbered like any event) and adds the channel's data to it (captured,
        # command_replies.json uuid_dump_json: mod_commands.c line 6468).
        ev = self.engine.switch.new_event(
            "CHANNEL_DATA", calling=("mod_commands.c", "uuid_dump_function", 6468))
        pairs = ev.standard_headers() + ch.headers(True)
        if fmt == "json":
            return json.dumps(dict(pairs), separators=(",", ":"))
        if fmt == "plain":  # switch_event_serialize with encode off ("plain")
            return "".join(f"{k}: {v}\n" for k, v in pairs) + "\n"
        from fssim import wire

        # switch_event.c:switch_event_serialize, url-encoded like plain events ("txt")
        return "".join(wire.plain_line(k, v) for k, v in pairs) + "\n"

    def hupall(self, req: ApiRequest) -> str:
        """mod_commands.c:hupall_api_function: ``hupall [cause] [var value ...]``."""
        parts = req.args.split()
        cause = (parse_cause(parts[0]) if parts else None) or "MANAGER_REQUEST"
        pairs = [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
        for ch in list(self.engine.channels.values()):
            if ch.alive and all(ch.variables.get(k) == v for k, v in pairs):
                self.engine.hangup(ch, cause)
        if not pairs:
            return f"+OK hangup all channels with cause {cause}\n"
        more = "..." if len(pairs) > 1 else ""
        return (f"+OK hangup all channels matching [{pairs[0][0]}]=[{pairs[0][1]}]{more} "
                f"with cause: {cause}\n")

    # ---- originate ---------------------------------------------------------------------
    def originate(self, req: ApiRequest) -> str:
        """mod_commands.c:originate_function: ``+OK <uuid>`` or ``-ERR <CAUSE>`` (captured)."""
        text = req.args
        if not text:
            return usage(ORIGINATE_SYNTAX)
        # switch_separate_string on a space: quotes protect a space, braces do not (a space
        # inside {...} splits the command; the builders send \s there).
        argv = split_blank(text)
        if len(argv) < 2 or len(argv) > 7:
            return usage(ORIGINATE_SYNTAX)
        argv = [None if a == "undef" else a for a in argv]  # type: ignore[misc]
        dial, exten = argv[0] or "", argv[1] or ""
        cid_name = argv[4] if len(argv) > 4 else None
        cid_num = argv[5] if len(argv) > 5 else None
        timeout = 60.0
        if len(argv) > 6 and argv[6]:
            try:
                timeout = float(argv[6])
            except ValueError:
                pass
        if exten.startswith("&") and len(exten) > 1:
            body = exten[1:]
            name, _, arg = body.partition("(")
            arg = arg[:-1] if arg.endswith(")") else arg
            on_answer = self.engine.continue_with_app(name, arg)
        else:
            on_answer = self.engine.continue_with_extension(
                exten, (argv[2] if len(argv) > 2 else None) or "XML")
        winner, cause = self.engine.originate(dial, on_answer=on_answer, timeout=timeout,
                                              cid_name=cid_name, cid_num=cid_num)
        if winner is None:
            return f"-ERR {cause}\n"
        return f"+OK {winner.uuid}\n"

    # ---- show --------------------------------------------------------------------------
    def show(self, req: ApiRequest) -> str:
        """mod_commands.c:show_function for channels / calls (json, delim, count)."""
        parts = req.args.split()
        if not parts or parts[0] not in ("channels", "calls"):
            return usage("codec|endpoint|application|api|dialplan|file|timer|calls [count]|"
                         "channels [count|like <match string>]|calls|detailed_calls|"
                         "bridged_calls|detailed_bridged_calls|aliases|complete|chat|"
                         "management|modules|nat_map|say|interfaces|interface_types|tasks|"
                         "limits|status")
        what = parts[0]
        fmt = "delim"
        count_only = len(parts) > 1 and parts[1] == "count"
        if "as" in parts:
            index = parts.index("as")
            if index + 1 < len(parts):
                fmt = parts[index + 1]
        rows = self._channel_rows() if what == "channels" else self._call_rows()
        if fmt not in ("delim", "csv", "json", "xml"):
            return f"-ERR Cannot find format {fmt}\n"
        if count_only:
            # a count query returns one row; show_*_callback keep only its number
            if fmt == "json":
                return json.dumps({"row_count": len(rows), "rows": []}, separators=(",", ":"))
            if fmt == "xml":
                return f'<result row_count="{len(rows)}"/>\n'
            return f"\n{len(rows)} total.\n"
        if fmt == "json":
            if not rows:
                return '{"row_count": 0}\n'  # captured (show_channels_json_empty)
            return _json_rows(rows)
        if fmt == "xml":
            if not rows:
                return '<result row_count="0"/>\n'
            from xml.sax.saxutils import escape

            out = [f'<result row_count="{len(rows)}">']
            for index, row in enumerate(rows, 1):
                out.append(f'  <row row_id="{index}">')
                out += [f"    <{k}>{escape(v)}</{k}>" for k, v in row.items()]
                out.append("  </row>")
            return "\n".join(out + ["</result>"]) + "\n"
        if not rows:
            return "\n0 total.\n"
        names = list(rows[0].keys())
        lines = [",".join(names)] + [",".join(r[n] for n in names) for r in rows]
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def _row(self, ch: Channel) -> dict[str, str]:
        """One ``channels`` table row (column order of command_replies.json). The table keeps
        the original caller id; callee fields name the dialled agent ("Outbound Call")."""
        created_s = ch.created_us // 1_000_000
        p = ch.profile
        cid_name = p.caller_id_name if p.orig_caller_id_name is None else p.orig_caller_id_name
        cid_num = (p.caller_id_number if p.orig_caller_id_number is None
                   else p.orig_caller_id_number)
        other = ch.other if ch.bridged_side else None
        callee = ("", "", "")
        sent = ("", "")
        call_uuid = ""
        if ch.direction == "outbound":
            callee = ("Outbound Call", p.destination_number, "SEND")
            if other is not None:
                op = other.profile
                sent = (op.caller_id_name, op.caller_id_number)
                call_uuid = other.uuid
        elif other is not None:
            callee = ("Outbound Call", other.profile.destination_number, "SEND")
            sent = callee[:2]
            call_uuid = ch.uuid
        inbound = ch.direction == "inbound"
        return {
            "uuid": ch.uuid, "direction": ch.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created_s)),
            "created_epoch": str(created_s), "name": ch.name, "state": ch.state,
            "cid_name": cid_name, "cid_num": cid_num,
            "ip_addr": p.network_addr if inbound else "", "dest": p.destination_number,
            "application": ch.app_name, "application_data": ch.app_data,
            "dialplan": p.dialplan, "context": p.context, "read_codec": "PCMU",
            "read_rate": "8000", "read_bit_rate": "64000", "write_codec": "PCMU",
            "write_rate": "8000", "write_bit_rate": "64000", "secure": "",
            "hostname": self.engine.switch.hostname, "presence_id": "",
            "presence_data": "", "accountcode": "", "callstate": ch.callstate,
            "callee_name": callee[0], "callee_num": callee[1], "callee_direction": callee[2],
            "call_uuid": call_uuid, "sent_callee_name": sent[0], "sent_callee_num": sent[1],
            "initial_cid_name": cid_name, "initial_cid_num": cid_num,
            "initial_ip_addr": p.network_addr if inbound else "",
            "initial_dest": p.destination_number, "initial_dialplan": p.dialplan,
            "initial_context": p.context,
        }

    def _live_channels(self) -> list[Channel]:
        chans = [c for c in self.engine.channels.values() if not c.reported.is_set()]
        return sorted(chans, key=lambda c: (c.created_us, c.session_id))

    def _channel_rows(self) -> list[dict[str, str]]:
        # The core database, not the sessions: rows trail the events (fssim.coredb).
        return [dict(row) for row in self.db.rows()]

    def _call_rows(self) -> list[dict[str, str]]:
        """``show calls``: one row per bridged pair (b_* from leg B) or lone channel."""
        keys = ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name",
                "cid_num", "ip_addr", "dest", "presence_id", "presence_data", "accountcode",
                "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid",
                "hostname", "sent_callee_name", "sent_callee_num")
        rows = []
        seen: set[str] = set()
        for ch in self._live_channels():
            if ch.uuid in seen or not self.db.has(ch.uuid):
                continue
            other = ch.other if ch.bridged_side in ("a", "app") else None
            if ch.bridged_side == "b" and ch.other is not None and \
                    ch.other.uuid not in seen and not ch.other.reported.is_set():
                continue  # listed with its A leg
            base = self._row(ch)
            row = {k: base[k] for k in keys}
            b = self._row(other) if other is not None else None
            for k in ("uuid", "direction", "created", "created_epoch", "name", "state",
                      "cid_name", "cid_num", "ip_addr", "dest", "presence_id", "presence_data",
                      "accountcode", "callstate", "callee_name", "callee_num",
                      "callee_direction", "sent_callee_name", "sent_callee_num"):
                row[f"b_{k}"] = b[k] if b else ""
            row["call_created_epoch"] = base["created_epoch"] if b else ""
            rows.append(row)
            seen.add(ch.uuid)
            if other is not None:
                seen.add(other.uuid)
        return rows

    # ---- simulation controls -----------------------------------------------------------
    def sim_inbound(self, req: ApiRequest) -> str:
        syntax = "sim_inbound <caller> <dnis> [name=value ...]"
        parts = req.args.split()
        if len(parts) < 2:
            return usage(syntax)
        params: list[tuple[str, str]] = []
        for item in parts[2:]:
            name, sep, value = item.partition("=")
            if not sep or not name:
                return usage(syntax)
            params.append((name, value))
        from fssim.engine import SessionLimit

        try:
            ch = self.engine.inbound(parts[0], parts[1], params)
        except SessionLimit:
            # sofia.c:sofia_handle_sip_i_invite answers 503 "Maximum Calls In Progress"
            return "-ERR Maximum Calls In Progress\n"
        return f"+OK {ch.uuid}\n"

    def sim_dtmf(self, req: ApiRequest) -> str:
        parts = req.args.split()
        if len(parts) != 2 or not DTMF_DIGITS.match(parts[1]):
            return usage("sim_dtmf <uuid> <digits 0-9*#A-D>")
        ch = self.live(parts[0])
        if ch is None or not ch.alive:
            return NO_CHANNEL
        if not ch.answered:
            return "-ERR channel not answered\n"
        self.engine.spawn(self.engine.feed_dtmf, ch, parts[1].upper(), "RTP")
        return "+OK\n"

    def sim_hangup(self, req: ApiRequest) -> str:
        parts = req.args.split()
        if len(parts) not in (1, 2):
            return usage("sim_hangup <uuid> [cause]")
        cause = None
        if len(parts) == 2:
            cause = parse_cause(parts[1])
            if cause is None:
                return f"-ERR unknown cause {parts[1]}\n"
        ch = self.live(parts[0])
        if ch is None or not ch.alive:
            return NO_CHANNEL
        self.engine.far_end_hangup(ch, cause)
        return "+OK\n"

    def sim_endpoint(self, req: ApiRequest) -> str:
        syntax = ("sim_endpoint <contact> <answer|busy|noanswer|reject|unregistered> "
                  "[delay_ms] [talk_ms]")
        parts = req.args.split()
        if len(parts) < 2 or len(parts) > 4 or parts[1] not in BEHAVIOURS:
            return usage(syntax)
        try:
            delay = int(parts[2]) if len(parts) > 2 else 0
            talk = int(parts[3]) if len(parts) > 3 else None
        except ValueError:
            return usage(syntax)
        if delay < 0 or (talk is not None and talk < 0):
            return usage(syntax)
        self.engine.endpoints.set(parts[0], Behaviour(parts[1], delay, talk))
        return f"+OK {parts[0]} {parts[1]}\n"

    def sim_rtp(self, req: ApiRequest) -> str:
        """How a leg's far end audio arrives, for the RTP statistics at its hang-up
        (``fssim.rtpstats``): ``default`` for every leg without its own settings."""
        from fssim import rtpstats

        syntax = "sim_rtp <uuid|default> [loss=F] [jitter_ms=MS] [sending=0|1]"
        parts = req.args.split()
        if not parts:
            return usage(syntax)
        if parts[0] == "default":
            base, ch = self.engine.rtp_quality, None
        else:
            ch = self.live(parts[0])
            if ch is None or not ch.alive:
                return NO_CHANNEL
            base = ch.rtp_quality or self.engine.rtp_quality
        try:
            quality = rtpstats.parse_settings(base, parts[1:])
        except ValueError as exc:
            return f"-ERR {exc}\n"
        if ch is None:
            self.engine.rtp_quality = quality
        else:
            ch.rtp_quality = quality
        return (f"+OK loss={quality.loss:g} jitter_ms={quality.jitter_ms:g} "
                f"sending={int(quality.sending)}\n")

    def sim_register(self, req: ApiRequest) -> str:
        syntax = "sim_register <user>@<domain> [expires_s] [contact]"
        parts = req.args.split()
        if not 1 <= len(parts) <= 3:
            return usage(syntax)
        user, at, domain = parts[0].partition("@")
        if not at or not user or not domain or "/" in parts[0]:
            return usage(syntax)
        try:
            # no Expires at all: sofia_reg.c's default exptime (300)
            expires = int(parts[1]) if len(parts) > 1 else 300
        except ValueError:
            return usage(syntax)
        if expires <= 0:
            return usage(syntax) if expires < 0 else \
                "-ERR expires 0 is an unregister: use sim_unregister\n"
        contact = parts[2] if len(parts) > 2 else None
        if contact is not None and parse_contact(contact) is None:
            return f"-ERR bad contact {contact} (want [sip:]user@host[:port][;params])\n"
        row = self.engine.registrar.register(user, domain, expires, contact)
        return f"+OK {row.key} registered {row.contact_uri} {expires}\n"

    def sim_unregister(self, req: ApiRequest) -> str:
        parts = req.args.split()
        user, at, domain = (parts[0] if len(parts) == 1 else "").partition("@")
        if not at or not user or not domain:
            return usage("sim_unregister <user>@<domain>")
        row = self.engine.registrar.unregister(user, domain)
        return f"+OK {row.key} unregistered\n"

    def sofia_contact(self, req: ApiRequest) -> str:
        """mod_sofia.c:sofia_contact_function (fssim.registrations); texts as recorded
        (tests/data/sofia_registration/replies.json)."""
        return self.engine.registrar.sofia_contact(req.args)


def register(switch: Switch, engine: Engine) -> ChannelApi:
    api = ChannelApi(engine)
    table: dict[str, Callable[[Any], str]] = {
        "uuid_answer": api.uuid_answer, "uuid_kill": api.uuid_kill,
        "uuid_bridge": api.uuid_bridge, "uuid_transfer": api.uuid_transfer,
        "uuid_broadcast": api.uuid_broadcast, "uuid_record": api.uuid_record,
        "uuid_setvar": api.uuid_setvar, "uuid_getvar": api.uuid_getvar,
        "uuid_exists": api.uuid_exists, "uuid_break": api.uuid_break,
        "uuid_send_dtmf": api.uuid_send_dtmf, "uuid_dump": api.uuid_dump,
        "hupall": api.hupall, "originate": api.originate, "show": api.show,
        "sched_del": api.sched_del,
        "sched_hangup": api.sched_hangup,
        "sim_inbound": api.sim_inbound, "sim_dtmf": api.sim_dtmf,
        "sim_hangup": api.sim_hangup, "sim_endpoint": api.sim_endpoint,
        "sim_register": api.sim_register, "sim_unregister": api.sim_unregister,
        "sim_rtp": api.sim_rtp,
        "sofia_contact": api.sofia_contact,
    }
    for name, handler in table.items():
        switch.register_api(name, handler)
    return api


# FreeSWITCH answers ``show`` from its API thread while every session runs on in its own
# thread; in this one process a thousand rows printed in one go would stop every channel for
# milliseconds, so the rows are printed a batch at a time, letting the channels run between.
ROWS_PER_TURN = 100


def _json_rows(rows: list[dict[str, str]]) -> str:
    """``json.dumps({"row_count": N, "rows": rows}, separators=(",", ":"))``, byte for byte
    (the captured layout), printed ROWS_PER_TURN rows at a time."""
    parts: list[str] = []
    for start in range(0, len(rows), ROWS_PER_TURN):
        if start:
            gevent.sleep(0)
        parts.extend(json.dumps(row, separators=(",", ":"))
                     for row in rows[start:start + ROWS_PER_TURN])
    return f'{{"row_count":{len(rows)},"rows":[{",".join(parts)}]}}'
