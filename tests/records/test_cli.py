"""``cc-core cdr export`` / ``cc-core cdr report`` / ``cc-core db migrate`` against records whose
figures were worked out by hand, on both stores; bad input says what is wrong and writes
nothing.

The day (2025-11-30, Asia/Shanghai) holds six calls of acme:
  07:00 e1 answered   wait 20 s  talk  60 s   (still 2025-11-29 in UTC)
  10:00 a1 answered   wait 20 s  talk  60 s
  10:10 a2 answered   wait 20 s  talk 100 s
  10:30 q1 abandoned in queue after 30 s
  14:00 i1 abandoned in the IVR (never queued)
  14:20 a3 answered   wait 20 s  talk  60 s
and around it, outside the period: x1 the evening before, y1 at midnight after, and beta's.
So: 6 calls, 4 answered, 2 abandoned (1 + 1), average wait 110/5 = 22 s, average talk
280/4 = 70 s, busiest hours 10:00 (3), 14:00 (2), 07:00 (1).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cc_core.cli import cli
from records import cdr
from records.db import open_database
from records.migrate import migrate
from tests.records.helpers import T0, abandoned_in_ivr, abandoned_in_queue, summary

MIN = 60_000
HOUR = 60 * MIN


def _talk(uuid: str, start: int, talk_s: int) -> dict:
    end = start + 25_000 + talk_s * 1000
    return summary(uuid, start_ms=start, end_ms=end, ended_at_ms=end,
                   billsec=str((end - start) // 1000))


DAY = [
    summary("e1", start_ms=T0 - 3 * HOUR),
    summary("a1", start_ms=T0),
    _talk("a2", T0 + 10 * MIN, 100),
    abandoned_in_queue("q1", start_ms=T0 + 30 * MIN, waited_ms=30_000),
    abandoned_in_ivr("i1", start_ms=T0 + 4 * HOUR),
    summary("a3", start_ms=T0 + 4 * HOUR + 20 * MIN),
]
AROUND = [
    summary("x1", start_ms=T0 - 10 * HOUR - MIN),     # 2025-11-29 23:59
    summary("y1", start_ms=T0 + 14 * HOUR),           # 2025-12-01 00:00
    summary("b1", "beta", start_ms=T0 + 5 * MIN),
]


@pytest.fixture
def filled(store_target: str) -> str:
    with open_database(store_target) as db:
        migrate(db)
        with db.transaction() as tx:
            cdr.store(tx, [cdr.from_summary(s) for s in DAY + AROUND])
    return store_target


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _day(target: str, *extra: str) -> list[str]:
    return ["--tenant", "acme", "--from", "2025-11-30", "--to", "2025-11-30", "--db", target,
            *extra]


def test_report_table_has_the_hand_counted_figures(filled: str) -> None:
    res = _run("cdr", "report", *_day(filled))
    assert res.exit_code == 0, res.output
    lines = [" ".join(line.split()) for line in res.output.splitlines()]
    assert lines[0] == ("Calls of acme, 2025-11-30 00:00 to 2025-12-01 00:00 "
                        "(Asia/Shanghai, end excluded)")
    for expected in ("calls 6", "answered 4 66.7%", "abandoned 2 33.3%", "in IVR 1",
                     "in queue 1", "average wait 0:22 m:ss, callers who queued",
                     "average talk 1:10 m:ss, answered calls",
                     "busiest hours 10:00-11:00 3 calls", "14:00-15:00 2 calls",
                     "07:00-08:00 1 call"):
        assert expected in lines, (expected, lines)
    # The chart: one bar per hour from the first to the last, 10:00's 3 calls the longest.
    chart = res.output.split("calls by hour\n")[1].splitlines()
    assert [c.split()[0] for c in chart] == [f"{h:02d}:00" for h in range(7, 15)]
    assert chart[3].split() == ["10:00", "#" * 40, "3"]
    assert chart[7].split() == ["14:00", "#" * 27, "2"] and chart[1].split() == ["08:00", "0"]


def test_report_csv(filled: str) -> None:
    res = _run("cdr", "report", *_day(filled, "--csv"))
    assert res.exit_code == 0, res.output
    got = dict(csv.reader(io.StringIO(res.output)))
    assert {k: got[k] for k in ("calls", "answered", "abandoned", "abandoned_in_ivr",
                                "abandoned_in_queue", "average_wait_s", "average_talk_s",
                                "busiest_hour_1", "busiest_hour_1_calls", "busiest_hour_2",
                                "busiest_hour_3_calls")} == {
        "calls": "6", "answered": "4", "abandoned": "2", "abandoned_in_ivr": "1",
        "abandoned_in_queue": "1", "average_wait_s": "22.0", "average_talk_s": "70.0",
        "busiest_hour_1": "10:00-11:00", "busiest_hour_1_calls": "3",
        "busiest_hour_2": "14:00-15:00", "busiest_hour_3_calls": "1"}
    assert got["from"] == "2025-11-30T00:00:00+08:00"


def test_export_csv_is_the_periods_calls_in_the_tenants_time(filled: str) -> None:
    res = _run("cdr", "export", *_day(filled, "--format", "csv"))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["call_uuid"] for r in rows] == ["e1", "a1", "a2", "q1", "i1", "a3"]
    a2 = rows[2]
    assert (a2["start"], a2["answer"], a2["end"], a2["agent_answer"]) == (
        "2025-11-30T10:10:00.000+08:00", "2025-11-30T10:10:00.000+08:00",
        "2025-11-30T10:12:05.000+08:00", "2025-11-30T10:10:25.000+08:00")
    assert (a2["wait_s"], a2["talk_s"], a2["billsec"], a2["disposition"]) == (
        "20.0", "100.0", "125", "answered")
    assert a2["ivr_path"] == "menu:main > 1 > queue:sales"
    assert (rows[4]["wait_s"], rows[4]["talk_s"], rows[4]["disposition"]) == (
        "", "", "abandoned_in_ivr")
    assert rows[0]["start"] == "2025-11-30T07:00:00.000+08:00"
    assert rows[0]["recording_path"] == "" and rows[0]["billing_result"] == ""


def test_export_jsonl_to_a_file(filled: str, tmp_path: Path) -> None:
    out = tmp_path / "acme.jsonl"
    res = _run("cdr", "export", *_day(filled, "--format", "jsonl", "--out", str(out)))
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["call_uuid"] for r in rows] == ["e1", "a1", "a2", "q1", "i1", "a3"]
    assert rows[3]["wait_s"] == 30.0 and rows[3]["talk_s"] is None
    assert rows[3]["disposition"] == "abandoned_in_queue"
    assert rows[1]["ivr_path"] == ["menu:main", "1", "queue:sales"]
    assert rows[1]["caller_province"] == "广东"


def test_a_period_given_as_times_excludes_its_end(filled: str) -> None:
    res = _run("cdr", "export", "--tenant", "acme", "--from", "2025-11-30T10:00",
               "--to", "2025-11-30T10:30", "--db", filled, "--format", "jsonl")
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["call_uuid"] for x in res.output.splitlines()] == ["a1", "a2"]


def _snapshot(target: str) -> tuple:
    with open_database(target) as db, db.transaction(write=False) as tx:
        return (tx.execute("SELECT count(*), max(stored_ms) FROM call_records").fetchone(),
                tx.execute("SELECT version, applied_ms FROM schema_version").fetchall())


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--tenant", "nobody", "--from", "2025-11-30", "--to", "2025-11-30"],
     "unknown tenant 'nobody': the record store has no call of it (tenants with records: "
     "acme, beta)", 2),
    (["--tenant", "acme", "--from", "2025-12-01", "--to", "2025-11-30"],
     "--from 2025-12-01 is not before --to 2025-11-30", 2),
    (["--tenant", "acme", "--from", "2099-01-01", "--to", "2099-01-31"],
     "--from 2099-01-01 is in the future", 2),
    (["--tenant", "acme", "--from", "30/11/2025", "--to", "2025-11-30"],
     "--from '30/11/2025': expected a date (2026-11-01)", 2),
])
@pytest.mark.parametrize("command", ["export", "report"])
def test_bad_input_is_named_and_writes_nothing(filled: str, tmp_path: Path, command: str,
                                               args: list[str], message: str, code: int
                                               ) -> None:
    before = _snapshot(filled)
    out = tmp_path / "out.csv"
    extra = ["--out", str(out)] if command == "export" else []
    res = CliRunner().invoke(cli, ["cdr", command, *args, "--db", filled, *extra])
    assert res.exit_code == code
    assert message in res.output
    assert _snapshot(filled) == before and not out.exists()


def test_reading_a_store_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "none.sqlite3"
    res = CliRunner().invoke(cli, ["cdr", "report", *_day(str(target))])
    assert res.exit_code == 3 and "no record store at" in res.output
    assert not target.exists()


def test_db_migrate_twice(store_target: str) -> None:
    first = _run("db", "migrate", "--db", store_target)
    assert first.exit_code == 0 and "applied 0001_call_records" in first.output
    again = _run("db", "migrate", "--db", store_target)
    assert again.exit_code == 0 and "(nothing to do)" in again.output
    assert "applied" not in again.output
