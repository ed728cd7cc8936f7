"""The load test's callers (loadtest/sipp/callers.csv): SIPp can read it, it spans the country,
and its blacklisted and VIP callers are the example tenant's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_core.routing.numbers import normalise
from cc_core.routing.region import RegionDirectory
from cc_core.tenants.loader import load_path
from loadtest.callers import build, read, write

REPO = Path(__file__).resolve().parents[2]
CALLERS = REPO / "loadtest" / "sipp" / "callers.csv"
TENANT = REPO / "examples" / "tenants" / "acme.yaml"


@pytest.fixture(scope="module")
def acme():  # type: ignore[no-untyped-def]
    (tenant,) = load_path(TENANT).tenants.values()
    return tenant


def test_the_committed_file_is_what_the_generator_writes(acme, tmp_path: Path) -> None:
    fresh = write(build(acme, 500), tmp_path / "callers.csv")
    assert fresh.read_text() == CALLERS.read_text(), \
        "regenerate it: python -m loadtest.callers"


def test_callers_come_from_every_province_on_mobiles_and_landlines(acme) -> None:
    callers = read(CALLERS)
    directory = RegionDirectory()
    plain = [normalise(c.number) for c in callers if c.kind == "plain"]
    provinces = {r.province for n in plain if (r := directory.lookup(n)) is not None}
    assert len(provinces) == 31
    kinds = {n.kind.value for n in plain}
    assert {"mobile", "landline"} <= kinds


def test_blacklisted_and_vip_callers_are_on_the_tenant_s_lists(acme) -> None:
    callers = read(CALLERS)
    black = acme.lists.blacklist
    barred = tuple(black.prefixes) + tuple(black.numbers)
    listed = {c.kind: [x.number for x in callers if x.kind == c.kind] for c in callers}
    assert listed["blacklisted"] and all(n.startswith(barred) for n in listed["blacklisted"])
    assert listed["vip"] and set(listed["vip"]) <= set(acme.lists.whitelist.numbers)
    assert not any(n.startswith(barred) for n in listed["plain"])


def test_a_malformed_row_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("SEQUENTIAL\n13311112222;1;plain\n13311112222;1\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"bad.csv:3: expected number;key;kind"):
        read(bad)
    bad.write_text("13311112222;1;plain\n", encoding="ascii")
    with pytest.raises(ValueError, match="first line must be SEQUENTIAL"):
        read(bad)
