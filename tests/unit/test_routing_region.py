"""Regional answering sends a caller to the branch of their province or city; a wrong
region sends a Shenzhen customer to the Beijing office."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cc_core.routing import build_area_codes
from cc_core.routing.area_codes import AREA_CODES
from cc_core.routing.numbers import normalise
from cc_core.routing.region import PROVINCES, Region, RegionDirectory


@pytest.fixture(scope="module")
def directory() -> RegionDirectory:
    return RegionDirectory()


# One mobile number per provincial-level division, carriers rotated (移动, 联通, 电信,
# 广电, virtual operators). Written by hand; each row was checked against the phone
# package's own Phone.find (its binary search over phone.dat), not against our decoder.
MOBILES: list[tuple[str, str, str, str]] = [
    ("13800138000", "北京", "北京", "010"),  # 移动
    ("13001400000", "河北", "保定", "0312"),  # 联通
    ("13300560000", "山西", "太原", "0351"),  # 电信
    ("19204760000", "内蒙古", "赤峰", "0476"),  # 广电
    ("13002450000", "辽宁", "沈阳", "024"),  # 联通
    ("13000910000", "吉林", "长春", "0431"),  # 联通
    ("13442700000", "黑龙江", "哈尔滨", "0451"),  # 移动
    ("13000210000", "上海", "上海", "021"),  # 联通
    ("13300770000", "江苏", "南京", "025"),  # 电信
    ("13305740000", "浙江", "宁波", "0574"),  # 电信
    ("13448650000", "安徽", "合肥", "0551"),  # 移动
    ("19204900000", "福建", "福州", "0591"),  # 广电
    ("13407000000", "江西", "南昌", "0791"),  # 移动
    ("13305320000", "山东", "青岛", "0532"),  # 电信
    ("13403710000", "河南", "郑州", "0371"),  # 移动
    ("13006160000", "湖北", "武汉", "027"),  # 联通
    ("13307350000", "湖南", "郴州", "0735"),  # 电信
    ("13410010000", "广东", "深圳", "0755"),  # 移动
    ("13300000000", "广西", "南宁", "0771"),  # 电信
    ("19208400000", "海南", "三亚", "0898"),  # 广电
    ("13002310000", "重庆", "重庆", "023"),  # 联通
    ("13308050000", "四川", "成都", "028"),  # 电信
    ("13007840000", "贵州", "贵阳", "0851"),  # 联通
    ("13008610000", "云南", "红河", "0873"),  # 联通
    ("13448930000", "西藏", "拉萨", "0891"),  # 移动
    ("13000070000", "陕西", "西安", "029"),  # 联通
    ("13309310000", "甘肃", "兰州", "0931"),  # 电信
    ("13000140000", "天津", "天津", "022"),  # 联通
    ("13309730000", "青海", "黄南", "0973"),  # 电信
    ("13007910000", "宁夏", "石嘴山", "0952"),  # 联通
    ("13009660000", "新疆", "乌鲁木齐", "0991"),  # 联通
    # virtual operators and newer segments
    ("13490000000", "北京", "北京", "010"),  # 移动虚拟运营商
    ("17090000000", "北京", "北京", "010"),  # 联通虚拟运营商
    ("17101000000", "福建", "莆田", "0594"),  # 联通
    ("17400000000", "陕西", "西安", "029"),  # 电信
    ("19200000000", "广东", "佛山", "0757"),  # 广电
    # phone.dat 2312 spells this area code "00479"; it must come out as 0479
    ("13030450000", "内蒙古", "锡林郭勒", "0479"),
]

LANDLINES: list[tuple[str, str, str, str]] = [
    ("01088886666", "北京", "北京", "010"),
    ("02161234567", "上海", "上海", "021"),
    ("02223456789", "天津", "天津", "022"),
    ("02363456789", "重庆", "重庆", "023"),  # municipality despite many cities in the data
    ("02087654321", "广东", "广州", "020"),
    ("075512345678", "广东", "深圳", "0755"),
    ("057187654321", "浙江", "杭州", "0571"),
    ("02584567890", "江苏", "南京", "025"),
    ("02787654321", "湖北", "武汉", "027"),
    ("02887654321", "四川", "成都", "028"),
    ("02987654321", "陕西", "西安", "029"),
    ("02423456789", "辽宁", "沈阳", "024"),
    ("089865123456", "海南", "海口", "0898"),  # one code for the whole province
    ("07281234567", "湖北", "仙桃", "0728"),  # shared by 仙桃/潜江/天门
    ("085112345678", "贵州", "贵阳", "0851"),  # shared by 贵阳/遵义/安顺
    ("09918765432", "新疆", "乌鲁木齐", "0991"),
    ("08916543210", "西藏", "拉萨", "0891"),
    ("04712345678", "内蒙古", "呼和浩特", "0471"),
    ("09512345678", "宁夏", "银川", "0951"),
    ("077112345678", "广西", "南宁", "0771"),
    ("06341234567", "山东", "莱芜", "0634"),  # only in phone.dat, not in the geocoder
]


def test_thirty_one_divisions_in_the_table() -> None:
    # Guards the table itself: one row per province, municipality and region.
    assert sorted({row[1] for row in MOBILES}) == sorted(PROVINCES)
    assert len(PROVINCES) == 31


@pytest.mark.parametrize(("number", "province", "city", "area"), MOBILES)
def test_mobile_prefix(directory: RegionDirectory, number: str, province: str, city: str, area: str) -> None:
    assert directory.lookup(normalise(number)) == Region(province, city, area)


@pytest.mark.parametrize(("number", "province", "city", "area"), LANDLINES)
def test_landline_area_code(
    directory: RegionDirectory, number: str, province: str, city: str, area: str
) -> None:
    assert directory.lookup(normalise(number)) == Region(province, city, area)


def test_mobile_and_landline_of_one_city_give_one_region(directory: RegionDirectory) -> None:
    # One routing rule "深圳 → Shenzhen branch" must catch both kinds of caller.
    assert directory.lookup(normalise("13410010000")) == directory.lookup(normalise("075512345678"))


@pytest.mark.parametrize(
    "number",
    [
        "14000000000",  # 140 segment: no prefix in the data
        "16500000000",
        "19999999999",
        "03001234567",  # well-formed area code nobody uses
        "04001234567",  # the geocoder knows it only as "中国"
        "4008001234",  # service numbers have no region
        "95588",
        "+85223456789",
        "anonymous",
        "garbage",
    ],
)
def test_unknown_is_none(directory: RegionDirectory, number: str) -> None:
    assert directory.lookup(normalise(number)) is None


@pytest.mark.parametrize(
    ("code", "province"),
    [("010", "北京"), ("0755", "广东"), ("0898", "海南"), ("0991", "新疆"), ("0471", "内蒙古"),
     ("0300", None), ("755", None), ("", None), ("0755x", None)],
)
def test_province_of_area_code(directory: RegionDirectory, code: str, province: str | None) -> None:
    assert directory.province_of_area_code(code) == province


def test_coverage_is_what_the_report_says(directory: RegionDirectory) -> None:
    # Bounds, not exact counts, so a data update that adds segments still passes.
    assert directory.mobile_prefix_count >= 490_000
    assert len(directory.area_codes) >= 320


def test_lookup_is_fast(directory: RegionDirectory) -> None:
    numbers = [normalise(n) for n, *_ in MOBILES + LANDLINES]
    rounds = 2000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            for n in numbers:
                directory.lookup(n)
        best = min(best, time.perf_counter() - start)
    per_lookup_us = best / (rounds * len(numbers)) * 1e6
    # About 0.2 µs here; the bound leaves room for a loaded CI box but fails a
    # per-call file read or scan.
    assert per_lookup_us < 5, per_lookup_us


def _write_phone_dat(path: Path, rows: list[tuple[int, str, int]]) -> str:
    """A phone.dat in the package's layout: header, NUL-ended records, sorted prefixes."""
    records: dict[str, int] = {}
    blob = b""
    for _, record, _ in rows:
        if record not in records:
            records[record] = 8 + len(blob)
            blob += record.encode() + b"\0"
    body = b"".join(
        struct.pack("<iiB", prefix, records[record], carrier) for prefix, record, carrier in sorted(rows)
    )
    path.write_bytes(struct.pack("<4si", b"test", 8 + len(blob)) + blob + body)
    return str(path)


def test_municipality_is_its_own_city_whatever_the_mobile_data_says(tmp_path: Path) -> None:
    # In this data only 万州 uses 023; a landline on 023 must still be 重庆/重庆, as
    # Chongqing's code covers the whole municipality.
    dat = _write_phone_dat(
        tmp_path / "phone.dat",
        [(1300231, "重庆|万州|404000|023", 2), (1390755, "广东|深圳|518000|0755", 1)],
    )
    table = build_area_codes.derive(phone_dat=dat)
    assert table["023"] == ("重庆", "重庆")
    assert table["0755"] == ("广东", "深圳")
    directory = RegionDirectory(phone_dat=dat, area_codes=table)
    assert directory.lookup(normalise("02363456789")) == Region("重庆", "重庆", "023")
    assert directory.lookup(normalise("13002310000")) == Region("重庆", "万州", "023")
    assert directory.lookup(normalise("13907550000")) == Region("广东", "深圳", "0755")
    assert directory.lookup(normalise("13800138000")) is None
    assert directory.mobile_prefix_count == 2


def test_shipped_area_code_table_matches_the_installed_packages() -> None:
    # Fails after a phonenumbers or phone upgrade until the table is regenerated with
    # python -m cc_core.routing.build_area_codes
    assert build_area_codes.derive() == AREA_CODES
    assert build_area_codes.main(["--check"]) == 0


def test_workers_do_not_pay_for_the_geocoder() -> None:
    # Importing phonenumbers' geocoder costs ~100 MB per process; a worker only needs
    # the generated table.
    code = (
        "import sys; from cc_core.routing.region import RegionDirectory; RegionDirectory(); "
        "print('phonenumbers.geocoder' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
