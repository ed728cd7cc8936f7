"""Which agent phones are registered on the switch, so that the ACD skips the others.

FreeSWITCH 1.10.12 (mod_sofia, sofia_reg.c) tells a listener subscribed to
``event plain CUSTOM sofia::register sofia::unregister sofia::expire``:

* ``sofia::register`` on each successful REGISTER, refreshes included (``from-user``,
  ``from-host``, ``contact``, ``expires`` as a delta in seconds);
* ``sofia::unregister`` on a REGISTER with Expires 0 (same headers, ``expires: 0``);
* ``sofia::expire`` when a registration was not refreshed in time (``user``, ``host``,
  ``contact``, ``expires`` as an absolute epoch).

The key is ``user@domain`` as ``user/<user>@<domain>`` dials it: sofia compares the user
case-insensitively (mod_sofia.c:select_from_profile, ``upper(sip_user)``) and the domain as
is, so the user part of a key is lower-cased and the domain kept.

When in doubt, ask the switch: :meth:`RegistrationTracker.resolve` sends
``sofia_contact <user>@<domain>``, which answers the registered contacts or
``error/user_not_registered``. Doubt means: nothing heard yet for a user (the tracker
started after the phone registered), or an unregister/expire that leaves another contact of
the same user behind (a profile with multiple-registrations; on the vanilla profile a new
contact silently replaces the old, so the leftover is stale).

Events are handled idempotently (a repeated event changes nothing); ``on_change`` is called
only when a user's state changes, unknown to known included. A tracker holds the view of ONE
switch: with several nodes, keep one per node (a phone registers on one of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from esl_handlers import commands

REGISTER = "sofia::register"
UNREGISTER = "sofia::unregister"
EXPIRE = "sofia::expire"
SUBCLASSES: tuple[str, ...] = (REGISTER, UNREGISTER, EXPIRE)
# what to subscribe to (esl_handlers.commands.event_plain entry)
SUBSCRIPTION = "CUSTOM " + " ".join(SUBCLASSES)

NOT_REGISTERED_PREFIX = "error/"   # sofia_contact: error/user_not_registered


class EventLike(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


OnChange = Callable[[str, bool], None]
Api = Callable[[str], str]


def registration_key(user: str, domain: str) -> str:
    """``user@domain`` with the user lower-cased (sofia matches users case-insensitively)."""
    return f"{user.lower()}@{domain}"


class RegistrationTracker:
    """``user@domain -> registered`` from sofia's registration events.

    ``on_change(user_at_domain, registered)`` runs in the caller's greenlet, after the state
    is updated; ``api(cmd) -> str`` (optional) runs a sync api command on the same switch and
    returns its body (e.g. ``EslLink.api``); its errors propagate to the caller.
    """

    def __init__(self, on_change: OnChange, *, api: Api | None = None) -> None:
        self._on_change = on_change
        self._api = api
        self._state: dict[str, bool] = {}
        self._contacts: dict[str, set[str]] = {}

    # ---- queries ---------------------------------------------------------------------
    def registered(self, user_at_domain: str) -> bool | None:
        """True / False, or None when nothing is known (then :meth:`resolve`)."""
        user, _, domain = user_at_domain.partition("@")
        return self._state.get(registration_key(user, domain))

    def known(self) -> dict[str, bool]:
        return dict(self._state)

    # ---- events ----------------------------------------------------------------------
    def handle(self, event: EventLike) -> bool:
        """Take one event; False when it is not a registration event (nothing done)."""
        if event.get("Event-Name") != "CUSTOM":
            return False
        subclass = event.get("Event-Subclass")
        if subclass == REGISTER:
            key = self._key(event, "from-user", "from-host")
            if key is None:
                return True
            self._contacts.setdefault(key, set()).add(event.get("contact") or "")
            self._set(key, True)
        elif subclass in (UNREGISTER, EXPIRE):
            if subclass == UNREGISTER:
                key = self._key(event, "from-user", "from-host")
            else:
                key = self._key(event, "user", "host")
            if key is None:
                return True
            left = self._contacts.get(key, set())
            left.discard(event.get("contact") or "")
            if left and self._api is not None:
                self.resolve(key)   # another contact of the user: is it still there?
            else:
                self._contacts.pop(key, None)
                self._set(key, False)
        else:
            return False
        return True

    def absent(self, user_at_domain: str) -> None:
        """The switch said so in another answer (an originate to the user failed
        USER_NOT_REGISTERED): not registered, whatever was heard before."""
        user, _, domain = user_at_domain.partition("@")
        key = registration_key(user, domain)
        self._contacts.pop(key, None)
        self._set(key, False)

    # ---- asking the switch -----------------------------------------------------------
    def resolve(self, user_at_domain: str) -> bool | None:
        """Ask the switch with ``sofia_contact``; the state it gives (and on_change if that
        differs), or None when the reply is not a sofia_contact answer (``-ERR ...``: mod_sofia
        not loaded, a broken link) and the state is left as it was."""
        if self._api is None:
            raise RuntimeError("RegistrationTracker was built without api: pass api= to "
                               "resolve doubts with sofia_contact")
        user, _, domain = user_at_domain.partition("@")
        key = registration_key(user, domain)
        reply = self._api(commands.sofia_contact(key)).strip()
        if reply.startswith(NOT_REGISTERED_PREFIX):
            self._contacts.pop(key, None)
            self._set(key, False)
            return False
        contacts = [c for c in reply.split(",") if c.startswith("sofia/")]
        if not contacts:
            return None
        self._set(key, True)
        return True

    # ---- internals -------------------------------------------------------------------
    @staticmethod
    def _key(event: EventLike, user_header: str, host_header: str) -> str | None:
        user, host = event.get(user_header), event.get(host_header)
        if not user or not host:
            return None
        return registration_key(user, host)

    def _set(self, key: str, registered: bool) -> None:
        if self._state.get(key) is registered:
            return
        self._state[key] = registered
        self._on_change(key, registered)


# ---- agent contacts ------------------------------------------------------------------
_BLOCKS = {"{": "}", "<": ">", "[": "]"}


def _strip_blocks(dial: str) -> str | None:
    """The dial string without its leading {...}/<...>/[...] variable blocks (nesting counted,
    as switch_find_end_paren does); None when a block does not close."""
    rest = dial.strip()
    while rest and rest[0] in _BLOCKS:
        open_, close = rest[0], _BLOCKS[rest[0]]
        depth = 0
        for i, char in enumerate(rest):
            if char == open_:
                depth += 1
            elif char == close:
                depth -= 1
                if depth == 0:
                    rest = rest[i + 1:].lstrip()
                    break
        else:
            return None
    return rest


def contact_key(dial: str, *, default_domain: str | None = None) -> str | None:
    """The ``user@domain`` whose registration an agent's contact dials, or None when the
    contact is not registration-gated (never skip it for registration).

    * ``[{vars}|<vars>|[vars]]user/<user>@<domain>`` (mod_dptools.c:user_outgoing_channel: the
      directory's dial-string asks sofia_contact); ``user/<user>`` uses ``default_domain``
      (the switch's default domain), None without one;
    * ``sofia/<profile>/<user>%<domain>`` (mod_sofia.c:sofia_outgoing_channel looks up the
      registration);
    * None for ``sofia/gateway/...``, ``sofia/<profile>/<user>@<host>`` (an INVITE straight to
      that host: no registration involved), ``sofia/<profile>/<user>`` (looked up under the
      profile's name, not a domain), loopback/, error/, any other endpoint, a dial string
      with several legs (``,``, ``|``, ``:_:``) and one that does not parse.
    """
    rest = _strip_blocks(dial)
    if not rest or any(sep in rest for sep in (",", "|", ":_:", " ")):
        return None
    scheme, _, target = rest.partition("/")
    if scheme == "user":
        user, at, domain = target.partition("@")
        if not at:
            domain = default_domain or ""
        if not user or not domain or "/" in user or "@" in domain:
            return None
        return registration_key(user, domain)
    if scheme == "sofia":
        profile, _, dest = target.partition("/")
        if not profile or profile == "gateway" or "@" in dest:
            return None
        user, pct, domain = dest.partition("%")
        if not pct or not user or not domain or "%" in domain or "/" in dest:
            return None
        return registration_key(user, domain)
    return None
