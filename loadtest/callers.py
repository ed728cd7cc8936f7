"""The callers of a load test: a SIPp injection file (``-inf``) of 400 callers from every
province, with the tenant's blacklisted and VIP callers mixed in.

Rows are ``number;key;kind``: the caller's number, the IVR key they press, and ``plain``,
``vip`` (on the tenant's whitelist) or ``blacklisted`` (on its blacklist). A driver hands each
scenario the rows it expects (``rows(kind=...)``): blacklisted callers go to
``caller_blacklisted.xml``, which waits for the rejection. Numbers are real-looking: mobile
numbers on prefixes the region directory places in each province, and landlines on each
province's area codes, so regional routing sees the whole country.

    python -m loadtest.callers --tenant examples/tenants/acme.yaml --out loadtest/sipp/callers.csv
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cc_core.routing.area_codes import AREA_CODES
from cc_core.routing.region import PROVINCES, mobile_records
from cc_core.tenants.model import Tenant

KINDS = ("plain", "vip", "blacklisted")
HEADER = "SEQUENTIAL"       # SIPp reads the rows in order, one per call


@dataclass(frozen=True)
class Caller:
    number: str
    key: str
    kind: str

    def row(self) -> str:
        return f"{self.number};{self.key};{self.kind}"


def _mobile_prefixes() -> dict[str, list[int]]:
    by_province: dict[str, list[int]] = {}
    for prefix, region in mobile_records():
        by_province.setdefault(region.province, []).append(prefix)
    return by_province


def _area_codes() -> dict[str, list[str]]:
    by_province: dict[str, list[str]] = {}
    for code, (province, _city) in AREA_CODES.items():
        by_province.setdefault(province, []).append(code)
    return by_province


def build(tenant: Tenant, count: int, *, seed: int = 400, keys: str = "12",
          vip_share: float = 0.05, blacklisted_share: float = 0.05) -> list[Caller]:
    """``count`` callers spread over every province (mobiles and landlines), the tenant's
    whitelisted numbers as VIPs and numbers its blacklist rejects (listed numbers, and
    numbers on listed prefixes) in the given shares."""
    rng = random.Random(seed)
    mobiles, landlines = _mobile_prefixes(), _area_codes()
    vips = list(tenant.lists.whitelist.numbers)
    black = list(tenant.lists.blacklist.numbers) + [
        p + "".join(rng.choice("0123456789") for _ in range(11 - len(p)))
        for p in tenant.lists.blacklist.prefixes for _ in range(3)]
    barred = tuple(tenant.lists.blacklist.prefixes) + tuple(tenant.lists.blacklist.numbers)
    out: list[Caller] = []
    i = 0
    while len(out) < count:
        i += 1
        key = keys[i % len(keys)]
        draw = rng.random()
        if vips and draw < vip_share:
            out.append(Caller(rng.choice(vips), key, "vip"))
        elif black and draw < vip_share + blacklisted_share:
            out.append(Caller(rng.choice(black), key, "blacklisted"))
        else:
            province = PROVINCES[i % len(PROVINCES)]
            if i % 4 == 3 and landlines.get(province):
                code = rng.choice(landlines[province])
                # 11 digits with the area code: 023 + 8 local digits, 0755 + 7
                local = str(rng.randint(2, 8)) + "".join(
                    rng.choice("0123456789") for _ in range(10 - len(code)))
                number = code + local
            else:
                number = f"{rng.choice(mobiles[province])}{rng.randint(0, 9999):04d}"
            if number.startswith(barred) or number in vips:
                continue     # a plain caller is one the lists leave alone
            out.append(Caller(number, key, "plain"))
    return out


def write(callers: Iterable[Caller], path: Path) -> Path:
    path.write_text("\n".join([HEADER, *(c.row() for c in callers)]) + "\n", encoding="ascii")
    return path


def read(path: Path) -> list[Caller]:
    """The rows of an injection file; a malformed one is refused with its line number."""
    lines = path.read_text(encoding="ascii").splitlines()
    if not lines or lines[0] not in ("SEQUENTIAL", "RANDOM", "USER"):
        raise ValueError(f"{path}: the first line must be SEQUENTIAL, RANDOM or USER "
                         "(how SIPp reads the rows)")
    out = []
    for n, line in enumerate(lines[1:], 2):
        parts = line.split(";")
        if len(parts) != 3 or not parts[0].isdigit() or parts[2] not in KINDS:
            raise ValueError(f"{path}:{n}: expected number;key;kind with kind one of "
                             f"{', '.join(KINDS)}, got {line!r}")
        out.append(Caller(*parts))
    return out


def rows(callers: Iterable[Caller], kind: str | None = None) -> Iterator[Caller]:
    return (c for c in callers if kind is None or c.kind == kind)


def main(argv: list[str] | None = None) -> int:
    from cc_core.tenants.loader import load_path

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tenant", type=Path, default=Path("examples/tenants/acme.yaml"))
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--seed", type=int, default=400)
    p.add_argument("--out", type=Path, default=Path("loadtest/sipp/callers.csv"))
    args = p.parse_args(argv)
    loaded = load_path(args.tenant)
    (tenant,) = loaded.tenants.values()
    callers = build(tenant, args.count, seed=args.seed)
    write(callers, args.out)
    kinds = {k: sum(1 for c in callers if c.kind == k) for k in KINDS}
    print(f"{args.out}: {len(callers)} callers ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
