"""SIP registrations of phones on the simulated profile ``internal`` (mod_sofia's registrar).

What FreeSWITCH 1.10.12 does, read from src/mod/endpoints/mod_sofia/sofia_reg.c and
mod_sofia.c and checked on the lab switch (tests/data/sofia_registration/):

* A REGISTER with Expires > 0 stores one row per user@host (no multiple-registrations in the
  vanilla profile: a new contact replaces the old one, without an event for the old one) and
  fires CUSTOM ``sofia::register`` (sofia_reg_handle_register_token); a refresh fires it again.
* A REGISTER with Expires 0 deletes the row and fires ``sofia::unregister`` (same function),
  also when nothing was registered.
* A row not refreshed is deleted once ``expires + sip-expires-late-margin`` (60 s) has passed;
  the profile thread looks every ``ireg-seconds`` (30 s), so it goes between 60 and 90 s after
  the phone's Expires ran out, with ``sofia::expire`` (sofia_reg_del_callback), whose
  ``expires`` header is that absolute epoch, not a delta.
* ``sofia_contact [profile/]user[@domain]`` (mod_sofia.c:sofia_contact_function) lists the
  registered contacts as ``sofia/<profile>/sip:<user@host:port;params>`` joined by ",", no
  newline; none: ``error/user_not_registered``. The user is compared case-insensitively, the
  domain with the row's host or as a substring of the profile's presence-hosts.

Event-Calling-* name where the event is CREATED (switch_event.c: the standard block is added
by switch_event_create_subclass_detailed), which is what the lab switch reported.

Left out: the other events of a registration (``sofia::pre_register``,
``sofia::register_attempt``, MESSAGE_QUERY, PRESENCE_IN), NAT and TCP/TLS variants of the
contact (only ``;transport=`` changes ``status``), and the directory's own variables, which
the real switch merges after the auth headers (the simulator has no directory).
"""

from __future__ import annotations

import itertools
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent

if TYPE_CHECKING:
    from fssim.switch import SimEvent, Switch

PROFILE = "internal"
HOST = "127.0.0.1"          # the lab switch's domain, local_ip_v4 and profile address
PHONE_PORT = 5070           # where the simulated agent phones listen (fssim.engine)
# vanilla sip_profiles/internal.xml: presence-hosts = $${domain},$${local_ip_v4}
PRESENCE_HOSTS = f"{HOST},{HOST}"
USER_AGENT = "fssim-phone"  # the phone's User-Agent header: the phone's choice, any text
LATE_MARGIN_S = 60          # sofia.c: sip_expires_late_margin default
CHECK_INTERVAL_S = 30       # mod_sofia.h: IREG_SECONDS, sofia.c: profile->ireg_seconds

REGISTER = "sofia::register"
UNREGISTER = "sofia::unregister"
EXPIRE = "sofia::expire"
CALLING_REGISTER = ("sofia_reg.c", "sofia_reg_handle_register_token", 2059)
CALLING_UNREGISTER = ("sofia_reg.c", "sofia_reg_handle_register_token", 2213)
CALLING_EXPIRE = ("sofia_reg.c", "sofia_reg_del_callback", 726)


@dataclass
class Registration:
    user: str
    host: str
    contact_uri: str        # sip:user@host:port[;params], as the phone sent it
    call_id: str
    network_ip: str
    network_port: str
    expires_s: int
    expires_epoch: int      # the row's "expires" column: epoch of Expires + late margin
    deadline: float         # simulated seconds at which the row may be swept

    @property
    def key(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def contact_str(self) -> str:
        """sofia_reg.c: ``<display> <uri>``; no display in Contact nor To gives ``""``."""
        return f'"" <{self.contact_uri}>'

    @property
    def status(self) -> str:
        params = self.contact_uri.partition(";")[2].lower()
        if "transport=tls" in params:
            return "Registered(TLS)"
        if "transport=tcp" in params:
            return "Registered(TCP)"
        return "Registered(UDP)"

    @property
    def dial_target(self) -> str:
        """user@host:port of the contact (what a sofia channel is named after)."""
        return self.contact_uri.split(":", 1)[-1].split(";", 1)[0]


def parse_contact(text: str) -> tuple[str, str, str] | None:
    """``[sip:]user@host[:port][;params]`` -> (contact uri, host, port); None if malformed."""
    uri = text if text.lower().startswith(("sip:", "sips:")) else f"sip:{text}"
    target = uri.split(":", 1)[1].split(";", 1)[0]
    who, at, hostport = target.rpartition("@")
    if not at or not who or not hostport or any(c in text for c in " ,<>\"'"):
        return None
    host, _, port = hostport.partition(":")
    if not host or (port and not port.isdigit()):
        return None
    return uri, host, port or "5060"


class Registrar:
    """The registrations table of the simulated profile, and its events."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.rows: dict[str, Registration] = {}   # lower-cased user@host -> row
        self.known: set[str] = set()              # every user@host ever registered
        self._call_ids = itertools.count(1)
        self._sweeper: gevent.Greenlet | None = None

    # ---- the phone's side ------------------------------------------------------------
    def register(self, user: str, host: str, expires_s: int,
                 contact: str | None = None) -> Registration:
        """A REGISTER with ``Expires: expires_s`` (> 0) from the phone of user@host."""
        parsed = parse_contact(contact or f"sip:{user}@{HOST}:{PHONE_PORT}")
        if parsed is None:
            raise ValueError(f"bad contact {contact!r}")
        uri, ip, port = parsed
        key = f"{user}@{host}".lower()
        old = self.rows.get(key)
        # a phone keeps its Call-ID across refreshes (RFC 3261 10.2.4)
        call_id = old.call_id if old is not None and old.contact_uri == uri else self._call_id()
        clock = self.switch.clock
        lifetime = expires_s + LATE_MARGIN_S      # simulated seconds
        # the row's epoch in wall time, like Event-Date-*: no later than the expire event
        expires_epoch = int(time.time() + clock.real_seconds(lifetime))
        row = Registration(user=user, host=host, contact_uri=uri, call_id=call_id,
                           network_ip=ip, network_port=port, expires_s=expires_s,
                           expires_epoch=expires_epoch, deadline=clock.now() + lifetime)
        self.rows[key] = row
        self.known.add(key)
        self._fire_register(row)
        self._ensure_sweeper()
        return row

    def unregister(self, user: str, host: str) -> Registration:
        """A REGISTER with ``Expires: 0``: the row goes, ``sofia::unregister`` fires (even when
        there was no row: sofia does not look first)."""
        key = f"{user}@{host}".lower()
        row = self.rows.pop(key, None)
        if row is None:
            uri = f"sip:{user}@{HOST}:{PHONE_PORT}"
            row = Registration(user=user, host=host, contact_uri=uri, call_id=self._call_id(),
                               network_ip=HOST, network_port=str(PHONE_PORT), expires_s=0,
                               expires_epoch=0, deadline=0.0)
        self.known.add(key)
        self._fire_unregister(row)
        return row

    # ---- queries -----------------------------------------------------------------------
    def lookup(self, user: str, host: str) -> Registration | None:
        return self.rows.get(f"{user}@{host}".lower())

    def is_known(self, user: str, host: str) -> bool:
        """Whether the simulated directory has user@host (it ever registered)."""
        return f"{user}@{host}".lower() in self.known

    def contacts(self, user: str, domain: str) -> list[Registration]:
        """mod_sofia.c:select_from_profile: upper(sip_user)=upper(user) and (sip_host=domain
        or presence_hosts like '%domain%')."""
        return [r for r in self.rows.values()
                if r.user.upper() == user.upper()
                and (r.host == domain or domain in PRESENCE_HOSTS)]

    def sofia_contact(self, arg: str) -> str:
        """mod_sofia.c:sofia_contact_function for ``[profile/]user[@domain]`` (one profile:
        whatever names the profile, the domain decides)."""
        data = arg.partition("~")[0]
        user = data.split("/", 1)[1] if "/" in data else data
        user, _, domain = user.partition("@")
        domain = domain.split("/", 1)[0] or HOST   # switch_core_get_domain: vars.xml domain
        found = self.contacts(user, domain) if user else []
        if not found:
            return "error/user_not_registered"
        return ",".join(f"sofia/{PROFILE}/sip:{r.contact_uri.split(':', 1)[1]}" for r in found)

    # ---- expiry ------------------------------------------------------------------------
    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.dead:
            self._sweeper = self.switch.spawn(self._sweep_loop)

    def _sweep_loop(self) -> None:
        """sofia.c:sofia_profile_worker_thread_run calls sofia_reg_check_expire every
        ireg-seconds; rows past their expiry go, each with sofia::expire."""
        clock = self.switch.clock
        while self.rows:
            clock.sleep(CHECK_INTERVAL_S)
            self.sweep(clock.now())

    def sweep(self, now: float) -> None:
        for key, row in list(self.rows.items()):
            if row.deadline <= now:
                del self.rows[key]
                self._fire_expire(row)

    # ---- events ------------------------------------------------------------------------
    def _call_id(self) -> str:
        return f"{next(self._call_ids)}-{uuidlib.uuid4().hex[:8]}@{HOST}"

    def _auth_headers(self, row: Registration) -> list[tuple[str, str]]:
        """sofia_reg.c:sofia_reg_parse_auth fills v_event, merged at the end of register and
        unregister: number-alias defaults to the user, realm is the challenge realm
        (auto_from: the From host), domain_name the realm."""
        return [("sip_number_alias", row.user), ("sip_auth_username", row.user),
                ("sip_auth_realm", row.host), ("number_alias", row.user),
                ("user_name", row.user), ("domain_name", row.host)]

    def _new(self, subclass: str, calling: tuple[str, str, int]) -> SimEvent:
        return self.switch.new_event("CUSTOM", subclass, calling=calling)

    def _fire_register(self, row: Registration) -> None:
        # sofia_reg.c:sofia_reg_handle_register_token, MY_EVENT_REGISTER (exptime > 0)
        ev = self._new(REGISTER, CALLING_REGISTER)
        ev.extend([
            ("profile-name", PROFILE), ("from-user", row.user), ("from-host", row.host),
            ("presence-hosts", PRESENCE_HOSTS), ("contact", row.contact_str),
            ("call-id", row.call_id), ("rpid", "unknown"), ("status", row.status),
            ("expires", str(row.expires_s)), ("to-user", row.user), ("to-host", row.host),
            ("network-ip", row.network_ip), ("network-port", row.network_port),
            ("username", row.user), ("realm", row.host), ("user-agent", USER_AGENT),
        ])
        ev.extend(self._auth_headers(row))
        self.switch.fire(ev)

    def _fire_unregister(self, row: Registration) -> None:
        # sofia_reg.c:sofia_reg_handle_register_token, MY_EVENT_UNREGISTER (exptime == 0);
        # created before the 200 OK, fired after it
        ev = self._new(UNREGISTER, CALLING_UNREGISTER)
        ev.extend([
            ("profile-name", PROFILE), ("username", row.user), ("from-user", row.user),
            ("from-host", row.host), ("contact", row.contact_str), ("call-id", row.call_id),
            ("rpid", "unknown"), ("realm", row.host), ("network-ip", row.network_ip),
            ("network-port", row.network_port), ("user-agent", USER_AGENT), ("expires", "0"),
        ])
        ev.extend(self._auth_headers(row))
        self.switch.fire(ev)

    def _fire_expire(self, row: Registration) -> None:
        # sofia_reg.c:sofia_reg_del_callback, MY_EVENT_EXPIRE, from the sip_registrations row
        # (user and username are both sip_user; no directory headers)
        ev = self._new(EXPIRE, CALLING_EXPIRE)
        ev.extend([
            ("profile-name", PROFILE), ("call-id", row.call_id), ("user", row.user),
            ("username", row.user), ("host", row.host), ("contact", row.contact_str),
            ("expires", str(row.expires_epoch)), ("user-agent", USER_AGENT),
            ("realm", row.host), ("network-ip", row.network_ip),
            ("network-port", row.network_port),
        ])
        self.switch.fire(ev)

