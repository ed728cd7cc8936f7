"""The number inventory on both SQL stores: import (BOM, GBK, duplicates, invalid rows named),
search, reservations that two applicants cannot both win, expiry, and every move recorded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from provider.grading import Grade
from provider.inventory import (
    BadImport,
    InQuarantine,
    NumberTaken,
    UnknownNumber,
    get,
    history,
    import_numbers,
    move,
    reserve,
    search,
)
from provider.lifecycle import IllegalTransition, NumberState
from records.db import Database, open_database
from records.migrate import migrate

T0 = 1_796_000_000_000
HOUR_S = 3600


@pytest.fixture
def inv(store: Database, tmp_path: Path) -> Database:
    migrate(store)
    f = tmp_path / "numbers.csv"
    f.write_text("number\n4008888888\n4008123457\n4006137982\n4001666666\n4009112233\n",
                 encoding="utf-8")
    import_numbers(store, f, now_ms=T0)
    return store


def test_import_reads_bom_and_gbk_counts_duplicates_and_names_each_invalid_row(
        store: Database, tmp_path: Path) -> None:
    migrate(store)
    utf8 = tmp_path / "a.csv"
    utf8.write_bytes("\ufeff号码,备注\n4008-888-888,靓号\n4008888888,重复\n".encode())
    gbk = tmp_path / "b.csv"
    gbk.write_bytes("号码,备注\n4006137982,普通\n4003123456,错号段\n12345,太短\n"
                    "4008888888,已有\n".encode("gbk"))
    first = import_numbers(store, utf8, now_ms=T0)
    assert (first.accepted, first.duplicate, first.invalid) == (1, 1, [])
    second = import_numbers(store, gbk, now_ms=T0)
    assert (second.accepted, second.duplicate) == (1, 1)
    assert [(line, raw) for line, raw, _ in second.invalid] == [(3, "4003123456"), (4, "12345")]
    assert "in no carrier segment" in second.invalid[0][2]
    assert get(store, "4008888888").grade == "S"


def test_a_file_that_is_not_text_is_refused_and_nothing_is_written(
        store: Database, tmp_path: Path) -> None:
    migrate(store)
    bad = tmp_path / "numbers.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x80\x81")
    with pytest.raises(BadImport, match="neither UTF-8 nor GBK"):
        import_numbers(store, bad, now_ms=T0)
    assert search(store) == []


def test_search_by_carrier_pattern_and_grade_best_first(inv: Database) -> None:
    assert [r.number for r in search(inv)] == ["4008888888", "4001666666", "4009112233",
                                               "4008123457", "4006137982"]
    assert [r.number for r in search(inv, carrier="telecom", pattern="*8888")] == [
        "4008888888"]
    assert [r.number for r in search(inv, grades=[Grade.A])] == ["4009112233"]
    with pytest.raises(BadImport, match="use digits"):
        search(inv, pattern="%")


def test_a_reservation_holds_the_number_and_expires(inv: Database) -> None:
    row = reserve(inv, "4008888888", holder="applicant-1", ttl_s=72 * HOUR_S, now_ms=T0)
    assert (row.state, row.holder) == (NumberState.RESERVED, "applicant-1")
    assert "4008888888" not in [r.number for r in search(inv)]
    with pytest.raises(NumberTaken, match="is reserved by applicant-1"):
        reserve(inv, "4008888888", holder="applicant-2", ttl_s=HOUR_S, now_ms=T0 + 1000)
    later = T0 + 72 * HOUR_S * 1000
    row = reserve(inv, "4008888888", holder="applicant-2", ttl_s=HOUR_S, now_ms=later)
    assert row.holder == "applicant-2"
    moves = [(e.from_state, e.to_state, e.actor) for e in history(inv, "4008888888")]
    assert moves == [("", "available", "import"), ("available", "reserved", "applicant-1"),
                     ("reserved", "available", "system"),
                     ("available", "reserved", "applicant-2")]


def test_two_applicants_reserving_at_once_never_both_win(inv: Database, store_target: str) -> None:
    winners: list[str] = []
    losers: list[str] = []
    start = threading.Barrier(6)

    def attempt(i: int) -> None:
        with open_database(store_target) as db:
            start.wait()
            try:
                reserve(db, "4001666666", holder=f"applicant-{i}", ttl_s=HOUR_S, now_ms=T0)
                winners.append(f"applicant-{i}")
            except NumberTaken:
                losers.append(f"applicant-{i}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(winners) == 1 and len(losers) == 5
    assert get(inv, "4001666666").holder == winners[0]


def test_the_whole_life_to_active_and_back_to_the_shelf(inv: Database) -> None:
    n = "4009112233"
    reserve(inv, n, holder="acme", ttl_s=HOUR_S, now_ms=T0)
    for target in (NumberState.APPLIED, NumberState.UNDER_AUDIT, NumberState.CONTRACTED,
                   NumberState.ACTIVE, NumberState.SUSPENDED, NumberState.CANCELLED,
                   NumberState.QUARANTINE):
        move(inv, n, target, actor="staff-1", reason=f"to {target}", now_ms=T0 + 1000,
             tenant="acme" if target is NumberState.CONTRACTED else None)
    # The cooling-off period: not back on the shelf before it has passed.
    with pytest.raises(InQuarantine, match="in quarantine until .* cools off 90 days"):
        move(inv, n, NumberState.AVAILABLE, actor="staff-1", reason="early",
             now_ms=T0 + 1000 + 89 * 86_400_000)
    move(inv, n, NumberState.AVAILABLE, actor="staff-1", reason="cooled off",
         now_ms=T0 + 1000 + 90 * 86_400_000)
    row = get(inv, n)
    assert (row.state, row.tenant, row.holder, row.version) == (NumberState.AVAILABLE, "", "", 10)
    assert len(history(inv, n)) == 10


def test_an_illegal_move_is_refused_and_changes_nothing(inv: Database) -> None:
    with pytest.raises(IllegalTransition, match="is available: it cannot become active"):
        move(inv, "4008123457", NumberState.ACTIVE, actor="staff-1", reason="", now_ms=T0)
    assert get(inv, "4008123457").version == 1 and len(history(inv, "4008123457")) == 1
    with pytest.raises(UnknownNumber, match="not in the inventory"):
        move(inv, "4008000000", NumberState.RESERVED, actor="x", reason="", now_ms=T0)
