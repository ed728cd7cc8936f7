"""Scripted far ends for originate: what an agent phone does when the switch calls it.

``sim_endpoint <contact> <behaviour> [delay_ms] [talk_ms]`` records a sticky behaviour per
contact (the dial string without its ``{...}``/``[...]`` variable blocks). Contacts never
configured behave as an unreachable phone would on the capture switch: ``user/...`` of an
unknown user fails with SUBSCRIBER_ABSENT before any channel exists, any other SIP contact
fails with NORMAL_TEMPORARY_FAILURE (both seen in the captures' originate replies).
"""

from __future__ import annotations

from dataclasses import dataclass

from fssim.fsstrings import bracket_vars

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


def split_top(text: str, seps: str) -> list[str]:
    """Split on any char of ``seps`` outside ``{}``/``[]``/quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    cur: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth = max(0, depth - 1)
        elif char in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(char)
    parts.append("".join(cur))
    return parts


def strip_blocks(dial: str) -> tuple[dict[str, str], str]:
    """Leading ``{...}``, ``<...>`` and ``[...]`` blocks -> (variables, bare contact)."""
    variables: dict[str, str] = {}
    rest = dial.strip()
    while rest and rest[0] in "{[<":
        close = {"{": "}", "[": "]", "<": ">"}[rest[0]]
        end = rest.find(close)
        if end < 0:
            break
        variables.update(bracket_vars(rest[1:end]))
        rest = rest[end + 1:].strip()
    return variables, rest


def parse_dial_string(dial: str) -> tuple[dict[str, str], list[list[tuple[dict[str, str], str]]]]:
    """-> (global vars, groups); groups are tried in turn (``|``), the legs of one group ring
    at once (``,``)."""
    dial = dial.strip()
    global_vars: dict[str, str] = {}
    if dial.startswith("{"):
        end = dial.find("}")
        if end > 0:
            global_vars = bracket_vars(dial[1:end])
            dial = dial[end + 1:]
    groups = []
    for group in split_top(dial, "|"):
        legs = []
        for leg in split_top(group, ","):
            if leg.strip():
                leg_vars, contact = strip_blocks(leg)
                legs.append((leg_vars, contact))
        if legs:
            groups.append(legs)
    return global_vars, groups
