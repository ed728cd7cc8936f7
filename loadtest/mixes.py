"""Traffic mixes for the example tenants (``examples/tenants``): which callers call, which
number, which keys they press, and how the simulated agents behave. The demo plays them; each
script exercises one branch of the call flow. Callers who should reach the menus are mobiles of
regions the example's region rules do not route (Shanghai, Zhejiang, Jiangsu, ...), checked
against the `phone` package's data by hand."""

from __future__ import annotations

from loadtest.simdriver import CallerScript

# The example tenant's agents: answer after a short ring, talk a little (sim_endpoint syntax).
# The demo and the benches offer tens of calls a second: each of these example queues gets a
# shift of simulated agents on top of its named ones (cc_core.demo adds them to the tenant at
# level 2 of the queue's tiers), so callers are answered rather than all overflowed.
SHIFT_SIZE = 60
SHIFT = {queue: [f"{prefix}{i:03d}" for i in range(1, SHIFT_SIZE + 1)]
         for queue, prefix in (("support", "s1"), ("sales", "s2"))}
SHIFT_BEHAVIOUR = "answer 300 1500"

AGENTS = {
    **{f"user/{agent}@default": SHIFT_BEHAVIOUR for shift in SHIFT.values() for agent in shift},
    **{f"user/100{i}@default": "answer 300 2000" for i in range(1, 7)},
    **{f"user/200{i}@default": f"answer {200 + 150 * i} 1500" for i in range(1, 5)},
    "user/3001@default": "answer 300 1500", "user/3002@default": "answer 300 1500",
    "user/4001@default": "noanswer",       # the north queue overflows to a callback
    "sofia/gateway/carrier/13800000001": "answer 400 1000",
}

FULL = (
    CallerScript("menu → sales queue", "4008001234", "13705711234", ("1", "1"), 4),
    CallerScript("menu → service → order no. → support", "4008001234", "13512345678",
                 ("2", "1", "20261130#"), 2),
    CallerScript("menu → hours → hang up", "4008001234", "18912345678", ("3", "9"), 1),
    CallerScript("menu → operator", "4008001234", "13357112345", ("0",), 1),
    CallerScript("menu → sales → transfer out", "4008001234", "13645671234", ("1", "2"), 1),
    CallerScript("menu → service → voicemail", "4008001234", "13511117777", ("2", "2"), 1),
    CallerScript("silent caller → menu default", "4008001234", "13722225555", (), 1),
    CallerScript("invalid key then sales", "4008001234", "18858001234", ("7", "1", "1"), 1),
    CallerScript("VIP caller", "4008001234", "13916112222", ("1", "1"), 1),
    CallerScript("Guangdong landline → south", "4008001234", "075512345678", (), 1),
    CallerScript("Beijing landline → north", "4008001234", "01088886666", (), 1),
    CallerScript("Tibet mobile (blocked region)", "4008001234", "13989001234", (), 1),
    CallerScript("blacklisted 号段 170", "4008001234", "17012345678", (), 1),
    CallerScript("anonymous caller", "4008001234", "anonymous", (), 1),
    CallerScript("greeting mode → sales", "4008005678", "15921012345", (), 2),
    CallerScript("information line", "4008001111", "13301612345", (), 1),
    CallerScript("suspended number", "4008009999", "13722225555", (), 1),
    CallerScript("reserved number", "4008000000", "13622226666", (), 1),
    CallerScript("unknown 400 number", "4007770000", "13522227777", (), 1),
    CallerScript("after hours → voicemail", "4006660000", "13422228888", (), 1),
)

# The cheapest flow, for load: every call hears the information line and is hung up.
# A Shanghai mobile: Guangdong callers are routed to the south queue by region first.
ANNOUNCE = (CallerScript("information line", "4008001111", "13301612345", ()),)

# Every call takes the IVR path on the example's IVR number: its decision at park runs every
# check (tenant, lists, region, hours) and ends in the main menu; then the callers key through
# to a queue, voicemail, a transfer or a hang-up. Only callers who key, so a bounded run drains
# in seconds (a silent caller sits through every menu timeout). The call-flow bench plays it.
IVR = tuple(s for s in FULL if s.dnis == "4008001234" and s.keys)

# One complete IVR call: menu, key, submenu, key, queue, an agent answers, talk, hang-up.
IVR_TO_AGENT = tuple(s for s in FULL if s.name == "menu → sales queue")

MIXES = {"full": FULL, "announce": ANNOUNCE, "ivr": IVR, "ivr_to_agent": IVR_TO_AGENT}
