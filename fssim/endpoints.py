"""Scripted far ends for originate: what an agent phone does when the switch calls it.

``sim_endpoint <contact> <behaviour> [delay_ms] [talk_ms]`` records a sticky behaviour per
contact (the dial string without its ``<...>``/``{...}``/``[...]`` variable blocks). Contacts never
configured behave as an unreachable phone would on the capture switch: ``user/...`` of an
unknown user fails with SUBSCRIBER_ABSENT before any channel exists, any other SIP contact
fails with NORMAL_TEMPORARY_FAILURE (both seen in the captures' originate replies).

Registrations (``sim_register``, fssim.registrations) take over for a user once it has
registered: ``user/<user>@<domain>`` and ``sofia/<profile>/<user>%<domain>`` then follow the
contact's script while the registration lasts (NORMAL_TEMPORARY_FAILURE without one) and fail
USER_NOT_REGISTERED before any channel exists once it is gone (tests/data/sofia_registration).
"""

from __future__ import annotations

from dataclasses import dataclass

from fssim.fsstrings import block_vars, bracket_vars, split_char

BEHAVIOURS = ("answer", "busy", "noanswer", "reject", "unregistered")


@dataclass(frozen=True)
class Behaviour:
    kind: str  # one of BEHAVIOURS, or "fail" for an unconfigured contact
    delay_ms: int = 0
    talk_ms: int | None = None
    cause: str = ""  # for kind == "fail"


class Endpoints:
    def __init__(self) -> None:
        self._table: dict[str, Behaviour] = {}

    def set(self, contact: str, behaviour: Behaviour) -> None:
        self._table[contact] = behaviour

    def get(self, contact: str) -> Behaviour | None:
        return self._table.get(contact)


# How switch_ivr_originate.c reads a dial string (FreeSWITCH 1.10.12), as the real switch
# showed it (tests/data/originate_escaping.json):
# * a dial string holding ":_:" anywhere is an enterprise originate
#   (switch_ivr_enterprise_originate): its leading <...> blocks are read first, then the
#   rest is cut at each ":_:" (a plain substring: no escape, no bracket protects it) and
#   each part is an originate of its own, all of them at once;
# * otherwise leading <...> blocks, then leading {...} blocks (switch_event_create_brackets,
#   each ending at its matching bracket: switch_find_end_paren counts nesting); a block that
#   does not end is a parse error, which fails the originate with DESTINATION_OUT_OF_ORDER;
# * the rest is split on "|" (failover) and each piece on "," (ring all) by
#   switch_separate_string (quotes and backslashes protect a delimiter, brackets do not;
#   each piece cleaned up, so a [...] value loses one more level of escaping per split),
#   except that a "," inside [...] not preceded by a backslash is first turned into a
#   marker, which is then what separates the [...] block's items;
# * each peer's leading [...] blocks are its own variables.
ENTERPRISE_DELIM = ":_:"
PARSE_ERROR = "error/DESTINATION_OUT_OF_ORDER"   # the engine's error/<CAUSE> pseudo-endpoint
_LEG_COMMA = "\x01"   # stands in for FreeSWITCH's UNQUOTED_ESC_COMMA


def find_end(text: str, open_: str, close: str) -> int:
    """switch_find_end_paren: the index of the bracket closing the one ``text`` starts with
    (after spaces), nesting counted; -1 when it does not close."""
    i = len(text) - len(text.lstrip(" "))
    if i >= len(text) or text[i] != open_:
        return -1
    depth = 1
    for j in range(i + 1, len(text)):
        if text[j] == open_ and open_ != close:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _leading_blocks(data: str, open_: str, close: str,
                    into: dict[str, str]) -> str | None:
    """Read ``data``'s leading blocks into ``into``; the rest, or None on a parse error."""
    while data.startswith(open_):
        end = find_end(data, open_, close)
        if end < 0:
            return None
        into.update(bracket_vars(data[1:end]))
        data = data[end + 1:]
    return data


def _mark_leg_commas(piece: str) -> str:
    """Commas inside [...] (not escaped) become the leg-block separator, so the "," split
    of the peers leaves them alone; inside quotes they stay commas."""
    out = list(piece)
    end = -1
    quoted = False
    for i, char in enumerate(piece):
        if end < 0 and char == "[":
            end = find_end(piece[i:], "[", "]")
            end = i + end if end >= 0 else -1
            quoted = False
        if char == "'":
            quoted = not quoted
        if 0 <= i < end and char == "," and (i == 0 or piece[i - 1] != "\\"):
            out[i] = "," if quoted else _LEG_COMMA
        if i == end:
            end = -1
    return "".join(out)


def _peer(text: str) -> tuple[dict[str, str], str]:
    """One peer of a dial string: its [...] variables and its contact."""
    peer = text.lstrip(" ")
    variables: dict[str, str] = {}
    while peer.startswith("["):
        end = find_end(peer, "[", "]")
        if end < 0:
            return {}, PARSE_ERROR
        variables.update(block_vars(split_char(peer[1:end], _LEG_COMMA)))
        peer = peer[end + 1:]
    return variables, peer.replace(_LEG_COMMA, ",")


def _one_originate(dial: str, variables: dict[str, str]
                   ) -> list[list[tuple[dict[str, str], str]]] | None:
    """A non-enterprise dial string: its <...>/{...} variables into ``variables``, and its
    groups; None on a parse error."""
    rest = _leading_blocks(dial.lstrip(" "), "<", ">", variables)
    if rest is not None:
        rest = _leading_blocks(rest, "{", "}", variables)
    if rest is None:
        return None
    groups = []
    for piece in split_char(rest.lstrip(" "), "|"):
        legs = [_peer(peer) for peer in split_char(_mark_leg_commas(piece), ",")
                if peer.strip()]
        if legs:
            groups.append(legs)
    return groups


def parse_dial_string(dial: str) -> tuple[dict[str, str], list[list[tuple[dict[str, str], str]]]]:
    """-> (global vars, groups); groups are tried in turn (``|``), the legs of one group ring
    at once (``,``). An enterprise originate is one group of all its parts' legs (each with
    its part's own variables). A parse error is a leg ``error/DESTINATION_OUT_OF_ORDER``."""
    if ENTERPRISE_DELIM not in dial:
        global_vars: dict[str, str] = {}
        groups = _one_originate(dial, global_vars)
        return global_vars, groups if groups is not None else [[({}, PARSE_ERROR)]]
    ultra: dict[str, str] = {}
    rest = _leading_blocks(dial.lstrip(" "), "<", ">", ultra)
    if rest is None:
        return ultra, [[({}, PARSE_ERROR)]]
    legs: list[tuple[dict[str, str], str]] = []
    for part in rest.split(ENTERPRISE_DELIM):
        part_vars: dict[str, str] = {}
        groups = _one_originate(part, part_vars)
        if groups is None:
            legs.append(({}, PARSE_ERROR))
            continue
        legs += [({**part_vars, **leg_vars}, contact) for group in groups
                 for leg_vars, contact in group]
    return ultra, [legs] if legs else []
