"""The rating consumer and the Redis credit view, on real Redis and both SQL stores."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry

from billing import accounts
from billing.credit import Credit, CreditView, Live, deadline_ms, has_credit, spend
from billing.service import Rater, month_spend, topup
from cc_core import keys as product_keys
from metrics.billing import BillingMetrics
from provider import catalogue as catalogue_mod
from records.consumer import CdrConsumer
from records.db import Database
from records.migrate import migrate
from tests.records.helpers import T0, append, summary

CAT = catalogue_mod.load()


def _credit(balance: int, live: dict[str, Live], inc: int = 6, included: int = 0) -> Credit:
    return Credit(balance, included, inc, {"mobile": 30, "landline": 20}, 0, 0, live)


def test_several_calls_share_one_stop_that_their_credit_buys() -> None:
    # 60 fen at 30 fen/min: 2 minutes of one call, 1 minute each of two, 40 s each of three
    one = _credit(60, {"a": Live(0, 30, 0)})
    assert deadline_ms(one, 0) == 120_000 - 1
    three = _credit(60, {u: Live(0, 30, 0) for u in "abc"})
    stop = deadline_ms(three, 0)
    assert stop is not None and spend(three, stop + 1)[0] <= 60 < spend(three, stop + 6001)[0]
    # a call joining later shortens everyone's time
    later = _credit(60, {"a": Live(0, 30, 0), "b": Live(60_000, 30, 0)})
    assert deadline_ms(later, 60_000) == 90_000 - 1
    # none left: stop now; plenty: nothing armed
    assert deadline_ms(_credit(0, {"a": Live(0, 30, 0)}), 5) == 5
    assert deadline_ms(_credit(10**9, {"a": Live(0, 30, 0)}), 0) is None


def test_included_seconds_count_as_credit() -> None:
    assert not has_credit(_credit(0, {}), 0)
    assert has_credit(_credit(0, {}, included=60), 0)
    # 3 fen buys one increment of 6 s at 30 fen/min, 2 fen buys nothing
    assert has_credit(_credit(3, {}), 0) and not has_credit(_credit(2, {}), 0)
    assert deadline_ms(_credit(0, {"a": Live(0, 30, 0)}, inc=60, included=120), 0) == 120_000 - 1


def _account(db: Database, tenant: str, balance: int, threshold: int) -> None:
    with db.transaction() as tx:
        accounts.open_account(tx, CAT, tenant, "micro", increment_s=60, low_credit_fen=threshold,
                              effective_on="2025-01-01", by="ops")
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   (tenant, "2025-01-01", 10**7))
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   (tenant, "2026-01-01", 10**7))
        accounts.topup(tx, tenant, balance, "alice", "prepaid")


def test_the_consumer_rates_once_publishes_and_raises_the_low_credit_alert(
        redis_url: str, store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import billing.service

    # Published as of the calls' own month (the records are dated T0).
    monkeypatch.setattr(billing.service, "now_ms", lambda: T0 + 300_000)
    r = redis.Redis.from_url(redis_url)
    migrate(store)
    _account(store, "acme", 1_000, threshold=900)
    view = CreditView(r)
    registry = CollectorRegistry()
    m = BillingMetrics(registry)
    topup(store, view, CAT, "acme", 1, "alice", "first publish")   # balance 1001
    for uuid in ("c1", "c2"):     # the worker's reservations: ended, not rated yet
        view.start("acme", uuid, "mobile", T0)
    head = view.head("acme")
    assert head is not None and (head.live_n, head.live_start_sum) == (2, 2 * T0)
    for uuid in ("c1", "c2"):
        view.end("acme", uuid, T0 + 120_000)
    head = view.head("acme")
    assert head is not None and (head.live_n, head.pending_fen) == (0, 2 * 50)
    before = view.read("acme")
    assert before is not None and before.balance_fen == 1001 and len(before.live) == 2
    consumer = CdrConsumer(r, store, "c", rater=Rater(r, CAT, m))
    s1 = summary("c1", start_ms=T0, answer_ms=T0, end_ms=T0 + 120_000)
    append(r, s1)
    append(r, summary("c2", start_ms=T0, answer_ms=T0, end_ms=T0 + 120_000))
    append(r, s1)                                            # delivered twice
    while consumer.step().read:
        pass
    after = view.read("acme")
    assert after is not None and after.balance_fen == 1001 - 2 * 50 and after.live == {}
    head = view.head("acme")        # the running totals went back with the reservations
    assert head is not None and (head.live_n, head.live_start_sum, head.pending_fen) == (0, 0, 0)
    with store.transaction(write=False) as tx:
        assert accounts.load(tx, "acme").balance_fen == 901
        month, _ = month_spend(tx, "acme", T0)
    # The month's cost, for the tenant's monthly cost cap: the two calls, counted once.
    assert r.get(product_keys.tenant_month_cost("acme", month)) == b"100"
    # 901 > 900: no alert yet; one more call crosses the threshold, once
    append(r, summary("c3", start_ms=T0 + 1, answer_ms=T0 + 1, end_ms=T0 + 60_001))
    append(r, summary("c4", start_ms=T0 + 2, answer_ms=T0 + 2, end_ms=T0 + 60_002))
    while consumer.step().read:
        pass
    events = r.xrange(product_keys.billing_events("acme"))
    assert [e[1][b"event"] for e in events] == [b"low_credit"]
    assert registry.get_sample_value("cccore_billing_low_credit_alerts_total",
                                     {"tenant": "acme"}) == 1
    topup(store, view, CAT, "acme", 5_000, "alice", "top-up")
    assert [e[1][b"event"] for e in r.xrange(product_keys.billing_events("acme"))] == [
        b"low_credit", b"credit_restored"]


def test_an_older_publish_never_overwrites_a_newer_one(redis_url: str) -> None:
    view = CreditView(redis.Redis.from_url(redis_url))
    snap = {"seq": 5, "balance_fen": 500, "included_left_s": 0, "increment_s": 6,
            "rate_mobile": 20, "rate_landline": 10, "low_credit_fen": 0}
    assert view.publish("t", snap, []) == (True, 0)
    assert view.publish("t", {**snap, "seq": 4, "balance_fen": 900}, []) == (False, 0)
    found = view.read("t")
    assert found is not None and found.balance_fen == 500


@pytest.mark.parametrize("amount", [0, -5])
def test_a_topup_that_is_not_positive_leaves_redis_and_sql_alone(
        redis_url: str, store: Database, amount: int) -> None:
    from billing.errors import BadAmount

    r = redis.Redis.from_url(redis_url)
    migrate(store)
    _account(store, "acme", 100, 0)
    with pytest.raises(BadAmount):
        topup(store, CreditView(r), CAT, "acme", amount, "alice", "x")
    assert r.exists(product_keys.credit("acme")) == 0


def test_sync_drops_reservations_whose_rating_was_never_published(
        redis_url: str, store: Database) -> None:
    from billing.service import sync
    from records import cdr

    r = redis.Redis.from_url(redis_url)
    migrate(store)
    _account(store, "acme", 1_000, threshold=0)
    view = CreditView(r)
    sync(store, view, CAT)
    view.start("acme", "rated", "mobile", T0)
    view.end("acme", "rated", T0 + 60_000)
    view.start("acme", "talking", "mobile", T0)
    with store.transaction() as tx:       # rated in SQL; its publish was lost
        cdr.store(tx, [cdr.from_summary(summary("rated", start_ms=T0, end_ms=T0 + 60_000))])
        accounts.rate_calls(tx, CAT, ["rated"])
    assert set(view.read("acme").live) == {"rated", "talking"}  # type: ignore[union-attr]
    sync(store, view, CAT)
    found = view.read("acme")
    assert found is not None and set(found.live) == {"talking"} and found.balance_fen == 975


def test_the_o1_bounds_never_promise_more_than_the_reservations_allow() -> None:
    from billing.credit import Head, bound_fen, surely_admits, surely_lasts

    # two calls of 30 fen/min, started 60 s and 0 s ago, 6 s increments
    head = Head(balance_fen=100, increment_s=6, dearest=30, version=0, live_n=2,
                live_start_sum=(100_000 - 60_000) + 100_000, pending_fen=10)
    exact = _credit(90, {"a": Live(40_000, 30, 0), "b": Live(100_000, 30, 0)})
    assert bound_fen(head, 100_000) >= spend(exact, 100_001)[0] + 10
    assert surely_admits(head, 100_000)
    assert not surely_lasts(head, 100_000)      # an hour at 30 fen/min is 1800 fen


def test_a_contract_year_that_begins_renews_the_included_minutes_the_workers_see(
        redis_url: str, store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # The credit view takes only a newer seq, and a new contract year writes no balance: with
    # no year opened, the workers held a tenant to last year's left-over minutes until some
    # top-up or rating happened to publish (and refused its calls meanwhile, with no credit).
    import billing.service

    r = redis.Redis.from_url(redis_url)
    migrate(store)
    with store.transaction() as tx:
        accounts.open_account(tx, CAT, "acme", "micro", increment_s=60,
                              effective_on="2025-03-15", by="ops")
        accounts.use_included(tx, "acme", accounts.date(2025, 3, 15), 2000 * 60 - 120)
    view = CreditView(r)
    eve = 1_773_503_000_000                 # 2026-03-14 23:43 Asia/Shanghai: 2 minutes left
    monkeypatch.setattr(billing.service, "now_ms", lambda: eve)
    rater = Rater(r, CAT)
    billing.service.publish(store, view, CAT, "acme")
    assert rater.new_years(store) == 0      # its rated calls opened this year already
    seen = view.read("acme")
    assert seen is not None and seen.included_left_s == 120
    monkeypatch.setattr(billing.service, "now_ms", lambda: eve + 3600_000)   # 2026-03-15
    assert rater.new_years(store) == 1
    seen = view.read("acme")
    assert seen is not None and seen.included_left_s == 2000 * 60
    assert rater.new_years(store) == 0, "a year is opened once"
