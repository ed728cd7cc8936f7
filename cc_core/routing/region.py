"""Where a caller is, for regional answering (区域接听): province and city in Chinese.

Sources, both read once in ``RegionDirectory.__init__``:

- Mobiles: the ``phone`` package's ``phone.dat`` (7-digit prefixes, 号段, to
  province|city|zip|area code). Its own lookup is a binary search that unpacks bytes on
  every call; we decode the table once into an array indexed by the prefix, so a lookup
  is one index operation.
- Landlines: phonenumbers' Chinese geocoder says which area codes exist and in which
  province. City names are taken from the ``phone`` records of the same area code, so a
  landline and a mobile from Shenzhen both give ``Region("广东", "深圳", "0755")`` and one
  routing rule covers both. Where several cities share an area code (0898: all of
  Hainan; 0728: 仙桃/潜江/天门) the city the geocoder names first wins. The four
  municipalities (010, 021, 022, 023) are province and city at once: 北京/北京.

Coverage limits: ``phone.dat`` is dated 2023-12 (version 2312); segments opened later
(or ported numbers, which keep their original prefix) give a stale or no answer.
"""

from __future__ import annotations

import re
import struct
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass

import phonenumbers
from phone import Phone
from phonenumbers import geocoder

from cc_core.routing.numbers import CallerNumber, NumberKind

__all__ = ["Region", "RegionDirectory", "PROVINCES", "MUNICIPALITIES"]


@dataclass(frozen=True, slots=True)
class Region:
    province: str
    city: str
    area_code: str | None


# The 31 mainland provincial-level divisions, short names as the phone data spells
# them. The geocoder prefixes its descriptions with either this short form or the
# long one (广西壮族自治区), so the short name found at the start identifies the province.
PROVINCES: tuple[str, ...] = (
    "北京", "天津", "上海", "重庆",
    "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海",
    "内蒙古", "广西", "西藏", "宁夏", "新疆",
)
MUNICIPALITIES: dict[str, str] = {"010": "北京", "021": "上海", "022": "天津", "023": "重庆"}

_AREA_CODE = re.compile(r"010|02[0-9]|0[3-9][0-9]{2}", re.ASCII)
_LONG_FORM = re.compile(r"^(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区)")
# Sample subscriber numbers to ask the geocoder with: it answers by prefix but wants a
# number of a plausible length for the area code.
_SAMPLES = ("88888888", "6888888", "2345678", "23456789")
_MOBILE_BASE = 1_000_000  # first 7-digit prefix the array can hold ("1000000")
_MOBILE_SPAN = 1_000_000  # all of 1000000..1999999


class RegionDirectory:
    """Number → region. Build once at start-up (about a second) and share."""

    def __init__(self, phone_dat: str | None = None) -> None:
        book = Phone(dat_file=phone_dat)
        self._records: list[Region | None] = [None]
        self._mobile = array("H", bytes(2 * _MOBILE_SPAN))
        by_area: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        index_of_offset: dict[int, int] = {}
        body = book.buf[book.first_phone_record_offset:]
        for prefix, offset, _carrier in struct.iter_unpack(book.phone_fmt, body):
            slot = prefix - _MOBILE_BASE
            if not 0 <= slot < _MOBILE_SPAN:
                continue
            index = index_of_offset.get(offset)
            if index is None:
                end = book.buf.index(b"\0", offset)
                province, city, _zip, area = book.buf[offset:end].decode().split("|")
                self._records.append(Region(province, city, _clean_area_code(area)))
                index = index_of_offset[offset] = len(self._records) - 1
            self._mobile[slot] = index
            record = self._records[index]
            assert record is not None
            if record.area_code:
                by_area[record.area_code][(record.province, record.city)] += 1
        self._landline = _landline_table(by_area)

    @property
    def mobile_prefix_count(self) -> int:
        return sum(1 for i in self._mobile if i)

    @property
    def area_codes(self) -> frozenset[str]:
        return frozenset(self._landline)

    def lookup(self, number: CallerNumber) -> Region | None:
        if number.kind is NumberKind.MOBILE:
            return self._records[self._mobile[int(number.national[:7]) - _MOBILE_BASE]]
        if number.kind is NumberKind.LANDLINE and number.area_code is not None:
            return self._landline.get(number.area_code)
        return None

    def province_of_area_code(self, area_code: str) -> str | None:
        """"0755" → "广东"; an unknown or malformed code → None."""
        region = self._landline.get(area_code)
        return region.province if region is not None else None


def _landline_table(by_area: dict[str, Counter[tuple[str, str]]]) -> dict[str, Region]:
    table: dict[str, Region] = {}
    codes = ["010"] + [f"02{d}" for d in range(10)] + [f"0{n}" for n in range(300, 1000)]
    for code in codes:
        description = _describe(code)
        if description is None:
            continue
        province = next((p for p in PROVINCES if description.startswith(p)), None)
        if province is None:
            continue  # "中国": the geocoder knows the code but not where it is
        if code in MUNICIPALITIES:
            table[code] = Region(province, province, code)
            continue
        cities = [c for (p, c) in by_area.get(code, Counter()) if p == province]
        city = _first_named(description, cities) or _most_common(by_area.get(code), province)
        if city is None:
            city = _city_from_description(description, province)
        table[code] = Region(province, city, code)
    # Codes the geocoder no longer lists but the phone data still uses (0634, 莱芜,
    # merged into 济南 in 2019 and still dialled).
    for code, counts in by_area.items():
        if code not in table:
            seat = max((n, p, c) for (p, c), n in counts.items())
            table[code] = Region(seat[1], seat[2], code)
    return table


def _clean_area_code(raw: str) -> str | None:
    # One record in phone.dat 2312 says "00479" for 锡林郭勒 (0479).
    code = raw[1:] if raw.startswith("00") else raw
    return code if _AREA_CODE.fullmatch(code) else None


def _describe(code: str) -> str | None:
    for sample in _SAMPLES:
        number = phonenumbers.parse("+86" + code[1:] + sample)
        text = geocoder.description_for_number(number, "zh")
        if text:
            return str(text)
    return None


def _first_named(description: str, cities: list[str]) -> str | None:
    named = [(description.find(c), c) for c in cities if c in description]
    return min(named)[1] if named else None


def _most_common(counts: Counter[tuple[str, str]] | None, province: str) -> str | None:
    # The prefecture seat holds most of an area code's mobile prefixes; used when the
    # geocoder names the area differently (克孜勒苏柯尔克孜自治州 vs 克州).
    if not counts:
        return None
    ranked = [(n, c) for (p, c), n in counts.items() if p == province]
    return max(ranked)[1] if ranked else None


def _city_from_description(description: str, province: str) -> str:
    rest = _LONG_FORM.sub("", description[len(province):])
    first = rest.split("、")[0]
    return first.removesuffix("市") or province
