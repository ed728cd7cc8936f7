"""The call record built from a call's summary, and stored once per call on both stores."""

from __future__ import annotations

import json

import pytest

from records import cdr
from records.db import Database
from records.migrate import migrate
from tests.records.helpers import T0, abandoned_in_ivr, abandoned_in_queue, summary


def test_an_answered_queue_call_has_its_wait_talk_and_times() -> None:
    rec = cdr.from_summary(summary("u1"), source_id="s/1-0", stored_ms=1)
    assert rec.disposition == "answered"
    assert (rec.start_ms, rec.answer_ms, rec.end_ms) == (T0, T0, T0 + 85_000)
    assert (rec.wait_ms, rec.talk_ms, rec.agent, rec.agent_answer_ms) == (
        20_000, 60_000, "a1", T0 + 25_000)
    assert (rec.billsec, rec.queue, rec.hangup_side) == (85, "sales", "caller")
    assert json.loads(rec.ivr_path) == ["menu:main", "1", "queue:sales"]
    assert (rec.caller_kind, rec.caller_province, rec.caller_city) == ("mobile", "广东", "深圳")
    assert (rec.recording_path, rec.billed_fen, rec.billing_result) == (None, None, None)


def test_a_caller_who_gave_up_waiting_has_a_wait_and_no_talk() -> None:
    rec = cdr.from_summary(abandoned_in_queue("u2", waited_ms=30_000))
    assert (rec.disposition, rec.wait_ms, rec.talk_ms, rec.agent) == (
        "abandoned_in_queue", 30_000, None, "")


def test_a_caller_who_hung_up_in_the_menu_never_waited() -> None:
    rec = cdr.from_summary(abandoned_in_ivr("u3"))
    assert (rec.disposition, rec.wait_ms, rec.talk_ms) == ("abandoned_in_ivr", None, None)


def test_a_caller_who_overflowed_waited_until_leaving_the_queue() -> None:
    rec = cdr.from_summary(summary("u4", outcome="overflowed", agent="", agent_answered_ms=0,
                                   bridge_ms=0, left_queue_ms=T0 + 65_000, waited_ms=60_000))
    assert (rec.disposition, rec.wait_ms, rec.talk_ms) == ("overflowed", 60_000, None)


def test_the_wait_of_a_caller_who_overflowed_into_a_second_queue_counts_both() -> None:
    # 60 s in the first queue (left at +65 s), joined the second at +66 s, answered at +81 s.
    rec = cdr.from_summary(summary("u6", waited_ms=60_000, joined_ms=T0 + 66_000,
                                   left_queue_ms=0, agent_answered_ms=T0 + 81_000,
                                   bridge_ms=T0 + 81_000))
    assert (rec.disposition, rec.wait_ms, rec.talk_ms) == ("answered", 75_000, 4_000)


@pytest.mark.parametrize(("outcome", "path", "expected"), [
    ("blacklisted", ["blacklisted:list"], "blacklisted"),
    ("voicemail", ["after_hours:closed", "voicemail"], "voicemail"),
    ("caller_hung_up", ["after_hours:closed"], "after_hours"),
    ("announced", ["after_hours:holiday", "announce:closed"], "after_hours"),
    ("announced", ["announce:info"], "ivr_completed"),
    ("callback_requested", ["queue:sales", "callback:sales"], "callback"),
    ("no_credit", [], "rejected_no_credit"),
    ("not_in_service", [], "not_in_service"),
    ("transferred", ["transfer:13800138000"], "transferred"),
    ("something_new", [], "failed"),
])
def test_dispositions(outcome: str, path: list[str], expected: str) -> None:
    assert cdr.disposition(outcome, path).value == expected


def test_a_summary_from_before_the_times_were_added_still_makes_a_record() -> None:
    old = {k: v for k, v in summary("u5").items()
           if k not in ("start_ms", "answer_ms", "bridge_ms", "end_ms", "joined_ms",
                        "agent_answered_ms", "left_queue_ms", "timezone", "hangup_side")}
    rec = cdr.from_summary(old)
    assert rec.start_ms == rec.end_ms == T0 + 85_000 and rec.timezone == "Asia/Shanghai"
    assert (rec.wait_ms, rec.talk_ms) == (None, None)


@pytest.mark.parametrize("bad", [
    {}, {"uuid": "u"}, {"tenant": "acme"}, {"uuid": "u", "tenant": "acme", "end_ms": "soon"},
])
def test_what_is_no_summary_is_refused(bad: dict) -> None:
    with pytest.raises(cdr.BadSummary):
        cdr.from_summary(bad)


def test_the_same_call_stored_twice_is_one_record_and_the_first_stays(store: Database
                                                                       ) -> None:
    migrate(store)
    first = cdr.from_summary(summary("u1"), source_id="first")
    again = cdr.from_summary(summary("u1", agent="a2"), source_id="again")
    with store.transaction() as tx:
        assert cdr.store(tx, [first]) == 1
    with store.transaction() as tx:
        assert cdr.store(tx, [again, cdr.from_summary(summary("u2"))]) == 1
    with store.transaction() as tx:
        rows = tx.execute("SELECT call_uuid, agent, source_id FROM call_records "
                          "ORDER BY call_uuid").fetchall()
    assert rows == [("u1", "a1", "first"), ("u2", "a1", "")]
