"""The simulated XML dialplan: what FreeSWITCH would run for a destination number.

It mirrors the dialplan of the capture switch (extension ``esl_park_400``): a destination
matching ``^400\\d{7}$`` runs one ``set`` per requested variable and then ``park`` (no answer).
Anything else finds no extension, and the stock routing state hangs the call up with
NO_ROUTE_DESTINATION (switch_core_state_machine.c:switch_core_standard_on_routing,
"No Route, Aborting").
"""

from __future__ import annotations

import re

PARK_NUMBER = re.compile(r"^400\d{7}$")

# sim_inbound names that describe the SIP request rather than dialplan `set`s.
SIP_LEVEL_NAMES = ("caller_id_name",)


def is_sip_level(name: str) -> bool:
    return name in SIP_LEVEL_NAMES or name.startswith("sip_h_")


def default_sets(destination: str) -> list[tuple[str, str]]:
    """What the capture switch's ``esl_park_400`` extension sets (loopback_selftest)."""
    return [("cc_entry", "esl_park"), ("cc_dnis", destination)]


def route(destination: str,
          sets: list[tuple[str, str]] | None = None) -> list[tuple[str, str]] | None:
    """The applications of the matching extension, or None when no extension matches.
    ``sets`` (from sim_inbound) replace the extension's own ``set``s."""
    if not PARK_NUMBER.match(destination):
        return None
    if sets is None:
        sets = default_sets(destination)
    apps = [("set", f"{name}={value}") for name, value in sets if not is_sip_level(name)]
    apps.append(("park", ""))
    return apps
