"""Where a caller is, for regional answering (区域接听): province and city in Chinese.

Sources:

- Mobiles: the ``phone`` package's ``phone.dat`` (7-digit prefixes, 号段, to
  province|city|zip|area code), read once in ``RegionDirectory.__init__``. Its own lookup
  is a binary search that unpacks bytes on every call; we decode the table once into an
  array indexed by the prefix, so a lookup is one index operation.
- Landlines: ``area_codes.AREA_CODES``, a table generated from phonenumbers' Chinese
  geocoder and the phone data by ``python -m cc_core.routing.build_area_codes`` (see
  there for how cities are named). It is generated rather than computed at start-up
  because importing the geocoder costs every worker about 100 MB.

Coverage limits: ``phone.dat`` is dated 2023-12 (version 2312); segments opened later
give no answer, and ported numbers (携号转网 keeps the number, not the region) or numbers
re-assigned across cities give the prefix's original region.
"""

from __future__ import annotations

import re
import struct
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from phone import Phone

from cc_core.routing.area_codes import AREA_CODES
from cc_core.routing.numbers import CallerNumber, NumberKind

__all__ = ["Region", "RegionDirectory", "mobile_records", "PROVINCES", "MUNICIPALITIES"]


@dataclass(frozen=True, slots=True)
class Region:
    province: str
    city: str
    area_code: str | None


# The 31 mainland provincial-level divisions, short names as the phone data spells them.
PROVINCES: tuple[str, ...] = (
    "北京", "天津", "上海", "重庆",
    "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海",
    "内蒙古", "广西", "西藏", "宁夏", "新疆",
)
MUNICIPALITIES: dict[str, str] = {"010": "北京", "021": "上海", "022": "天津", "023": "重庆"}

AREA_CODE = re.compile(r"010|02[0-9]|0[3-9][0-9]{2}", re.ASCII)
_MOBILE_BASE = 1_000_000  # first 7-digit prefix the array can hold ("1000000")
_MOBILE_SPAN = 1_000_000  # all of 1000000..1999999


def mobile_records(phone_dat: str | None = None) -> Iterator[tuple[int, Region]]:
    """(7-digit prefix, region) for every prefix in phone.dat; one Region per record."""
    book = Phone(dat_file=phone_dat)
    regions: dict[int, Region] = {}
    body = book.buf[book.first_phone_record_offset:]
    for prefix, offset, _carrier in struct.iter_unpack(book.phone_fmt, body):
        region = regions.get(offset)
        if region is None:
            end = book.buf.index(b"\0", offset)
            province, city, _zip, area = book.buf[offset:end].decode().split("|")
            region = regions[offset] = Region(province, city, _clean_area_code(area))
        yield prefix, region


def _clean_area_code(raw: str) -> str | None:
    # One record in phone.dat 2312 says "00479" for 锡林郭勒 (0479).
    code = raw[1:] if raw.startswith("00") else raw
    return code if AREA_CODE.fullmatch(code) else None


class RegionDirectory:
    """Number → region. Build once at start-up (a fraction of a second) and share."""

    def __init__(
        self,
        phone_dat: str | None = None,
        area_codes: Mapping[str, tuple[str, str]] = AREA_CODES,
    ) -> None:
        self._records: list[Region | None] = [None]
        index_of: dict[Region, int] = {}
        # 2 bytes per possible prefix (2 MB): 0 means unknown, else an index in _records.
        self._mobile = array("H", bytes(2 * _MOBILE_SPAN))
        for prefix, region in mobile_records(phone_dat):
            slot = prefix - _MOBILE_BASE
            if not 0 <= slot < _MOBILE_SPAN:
                continue
            index = index_of.get(region)
            if index is None:
                self._records.append(region)
                index = index_of[region] = len(self._records) - 1
            self._mobile[slot] = index
        self._landline = {
            code: Region(province, city, code) for code, (province, city) in area_codes.items()
        }

    @property
    def mobile_prefix_count(self) -> int:
        return sum(1 for i in self._mobile if i)

    @property
    def area_codes(self) -> frozenset[str]:
        return frozenset(self._landline)

    def lookup(self, number: CallerNumber) -> Region | None:
        """Region of a number from ``normalise``; None for unknown prefixes and codes,
        service, international, withheld and invalid numbers."""
        if number.kind is NumberKind.MOBILE:
            return self._records[self._mobile[int(number.national[:7]) - _MOBILE_BASE]]
        if number.kind is NumberKind.LANDLINE and number.area_code is not None:
            return self._landline.get(number.area_code)
        return None

    def province_of_area_code(self, area_code: str) -> str | None:
        """"0755" → "广东"; an unknown or malformed code → None."""
        region = self._landline.get(area_code)
        return region.province if region is not None else None
