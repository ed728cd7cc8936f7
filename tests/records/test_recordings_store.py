"""The recordings index on both stores, retention purge on a real tree, and the check.

A tree under the recordings root holds young and old recordings of tenants with different
retentions, a tenant kept forever, one not configured here, foreign files, a symlink out of
the root (file and folder) and a name that looks like a recording but is a symlink: purge
deletes exactly the expired recordings and their index rows, and nothing else.
"""

from __future__ import annotations

import os
import uuid as uuidlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cc_core.cli import cli
from recordings import index
from recordings.check import check
from recordings.layout import Root, relative_name
from recordings.retention import TenantRetention, purge
from recordings.wav import header
from records import cdr
from records.consumer import CdrConsumer
from records.db import Database
from records.migrate import migrate
from tests.records.helpers import append, summary

DAY = 86_400_000
NOW = 1_796_000_000_000          # 2026-11-30 (UTC), the purge's "now"
RULES = {"acme": TenantRetention(30, "Asia/Shanghai"),
         "beta": TenantRetention(365, "Asia/Shanghai"),
         "keep": TenantRetention(None, "Asia/Shanghai")}


def wav_bytes(ms: int, channels: int = 1) -> bytes:
    frames = ms * 8
    return header(channels, 8000, frames) + b"\0" * (frames * 2 * channels)


def recorded(uuid: str, tenant: str, started_ms: int, ms: int = 2000, **over: object) -> dict:
    name = relative_name(tenant, uuid, started_ms, "Asia/Shanghai")
    rec = {"name": name, "stereo": False, "by": "policy", "started_ms": started_ms,
           "stopped_ms": started_ms + ms, "ms": ms, "size": 44 + ms * 16,
           "cause": "success-silence"}
    s = summary(uuid, tenant, start_ms=started_ms - 25_000, recording=rec)
    s.update(over)
    return s


def put(root: Path, s: dict, *, age_ms: int | None = None, body: bytes | None = None) -> Path:
    """The recording's file, with its modification time ``age_ms`` before NOW."""
    path = root / s["recording"]["name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(s["recording"]["ms"]) if body is None else body)
    mtime = (NOW - (age_ms if age_ms is not None else NOW - s["recording"]["started_ms"])) / 1000
    os.utime(path, (mtime, mtime))
    return path


def consume(redis_client, db: Database, summaries: list[dict]) -> None:
    for s in summaries:
        append(redis_client, s)
    migrate(db)
    CdrConsumer(redis_client, db, "test").step()


def new_uuid() -> str:
    return str(uuidlib.uuid4())


@pytest.fixture
def redis_client(redis_url: str):
    import redis

    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    yield c
    c.close()


def test_index_and_call_record_agree_and_lookups_are_tenant_scoped(
        store: Database, redis_client) -> None:
    a, b, plain = new_uuid(), new_uuid(), new_uuid()
    consume(redis_client, store, [
        recorded(a, "acme", NOW - DAY, agent="a1", caller="13800000001"),
        recorded(b, "beta", NOW - DAY, agent="a1", caller="13800000001"),
        summary(plain, "acme")])                # not recorded: no row, no path
    with store.transaction(write=False) as tx:
        tx.execute("SELECT call_uuid, recording_path FROM call_records ORDER BY call_uuid")
        paths = dict(tx.fetchall())
        rows = {r.call_uuid: r for r in index.all_rows(tx)}
        assert index.get(tx, "beta", a) is None and index.get(tx, "acme", a) is not None
        assert [r.call_uuid for r in index.search(tx, "acme", agent="a1")] == [a]
        assert [r.call_uuid for r in index.search(tx, "beta", caller="13800000001")] == [b]
        day = rows[a].day
        assert [r.call_uuid for r in index.search(tx, "acme", day=day)] == [a]
    assert paths[plain] is None and set(rows) == {a, b}
    assert all(paths[u] == rows[u].name for u in rows)
    # The same summaries again (a redelivery): still one row each.
    consume(redis_client, store, [recorded(a, "acme", NOW - DAY)])
    with store.transaction(write=False) as tx:
        assert len(index.all_rows(tx)) == 2


def test_a_summary_naming_another_tenants_file_is_not_indexed(store: Database,
                                                             redis_client) -> None:
    u = new_uuid()
    forged = recorded(u, "acme", NOW - DAY)
    forged["recording"]["name"] = relative_name("beta", u, NOW - DAY, "Asia/Shanghai")
    consume(redis_client, store, [forged])
    with store.transaction(write=False) as tx:
        assert index.all_rows(tx) == []


def test_purge_deletes_only_expired_recordings_inside_the_root(
        store: Database, redis_client, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "precious.wav"
    victim.write_bytes(wav_bytes(1000))
    old_victim_time = (NOW - 400 * DAY) / 1000
    os.utime(victim, (old_victim_time, old_victim_time))
    old, young, beta_old, beta_young, forever, stranger, fresh_file = (
        new_uuid() for _ in range(7))
    summaries = [
        recorded(old, "acme", NOW - 40 * DAY), recorded(young, "acme", NOW - 10 * DAY),
        recorded(beta_old, "beta", NOW - 400 * DAY),
        recorded(beta_young, "beta", NOW - 40 * DAY),
        recorded(forever, "keep", NOW - 4000 * DAY),
        recorded(stranger, "ghost", NOW - 400 * DAY)]
    consume(redis_client, store, summaries)
    paths = {s["uuid"]: put(root, s) for s in summaries}
    # Indexed as old, but its file was written yesterday (restored?): younger by mtime: kept.
    restored = recorded(fresh_file, "acme", NOW - 40 * DAY)
    consume(redis_client, store, [restored])
    paths[fresh_file] = put(root, restored, age_ms=DAY)
    # Foreign files: another extension, a name of no call, a file at the top.
    day_dir = paths[old].parent
    (day_dir / "notes.txt").write_text("not a recording")
    (day_dir / "not-a-uuid.wav").write_bytes(wav_bytes(100))
    (root / "README").write_text("hands off")
    for p in (day_dir / "notes.txt", day_dir / "not-a-uuid.wav", root / "README"):
        os.utime(p, (old_victim_time, old_victim_time))
    # Symlinks out of the root: a recording-shaped name to a file, and a folder.
    link_name = day_dir / f"{new_uuid()}.wav"
    link_name.symlink_to(victim)
    (root / "acme" / "2024").symlink_to(outside, target_is_directory=True)

    dry = purge(store, Root(root), RULES.get, now_ms=NOW, dry_run=True)
    assert (dry.deleted_files, dry.deleted_rows) == (2, 2)
    assert all(p.exists() for p in paths.values())            # a dry run deletes nothing
    summary_ = purge(store, Root(root), RULES.get, now_ms=NOW)
    assert (summary_.deleted_files, summary_.deleted_rows) == (2, 2), summary_.table()
    assert summary_.kept_young == 3 and summary_.kept_forever == 1
    assert summary_.unknown_tenant == 1 and summary_.symlinks == 2 and summary_.foreign == 3
    gone = {u for u, p in paths.items() if not p.exists()}
    assert gone == {old, beta_old}
    assert victim.exists() and link_name.is_symlink()
    assert (day_dir / "notes.txt").exists() and (root / "README").exists()
    with store.transaction(write=False) as tx:
        left = {r.call_uuid for r in index.all_rows(tx)}
    assert left == {young, beta_young, forever, stranger, fresh_file}
    # Again: nothing more to do.
    assert purge(store, Root(root), RULES.get, now_ms=NOW).deleted_files == 0


def test_purge_drops_expired_index_rows_whose_file_is_gone(store: Database, redis_client,
                                                           tmp_path: Path) -> None:
    lost = new_uuid()
    consume(redis_client, store, [recorded(lost, "acme", NOW - 40 * DAY)])
    (tmp_path / "rec").mkdir()
    done = purge(store, Root(tmp_path / "rec"), RULES.get, now_ms=NOW)
    assert (done.deleted_files, done.deleted_rows) == (0, 1)


def test_check_reports_missing_empty_and_inconsistent_files(store: Database, redis_client,
                                                            tmp_path: Path) -> None:
    root = tmp_path / "rec"
    good, missing, empty, short, long_, outside = (new_uuid() for _ in range(6))
    s = {u: recorded(u, "acme", NOW - DAY) for u in (good, missing, empty, short, outside)}
    # Recorded 90 s of a call billed 85 s: longer than the call.
    s[long_] = recorded(long_, "acme", NOW - DAY, ms=90_000)
    consume(redis_client, store, list(s.values()))
    put(root, s[good])
    put(root, s[empty], body=b"")
    put(root, s[short], body=wav_bytes(500))
    put(root, s[long_])
    target = tmp_path / "away.wav"
    target.write_bytes(wav_bytes(2000))
    link = root / s[outside]["recording"]["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    report = check(store, Root(root), "acme")
    found = {p.call_uuid: p.what for p in report.problems}
    assert report.checked == 6 and good not in found, report.table()
    assert found[missing].startswith("missing") and found[empty].startswith("empty")
    assert "the switch reported 2000 ms" in found[short]
    assert "longer than the call (85 s billed)" in found[long_]
    assert "outside the recordings root" in found[outside]


def test_the_commands_print_a_summary_and_fail_a_check_with_problems(
        store_target: str, redis_client, tmp_path: Path) -> None:
    from records.db import open_database

    root = tmp_path / "rec"
    u = new_uuid()
    with open_database(store_target) as db:
        consume(redis_client, db, [recorded(u, "acme", NOW - DAY)])
    tenants = tmp_path / "acme.yaml"
    tenants.write_text("tenant: acme\nentry: hangup\nnumbers: {'4008001234': {}}\n"
                       "recording: {mode: all, retention: 30}\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["recordings", "check", "--db", store_target, "--root", str(root)])
    assert res.exit_code == 1 and "1 problems" in res.output and "missing" in res.output
    res = runner.invoke(cli, ["recordings", "purge", "--dry-run", "--db", store_target,
                              "--root", str(root), "--tenants", str(tenants)])
    assert res.exit_code == 0, res.output
    assert "dry run: nothing was deleted" in res.output and "recordings would delete" in res.output
    res = runner.invoke(cli, ["recordings", "purge", "--db", store_target, "--root", str(root)],
                        env={"CC_TENANTS": "", "CC_REDIS_URL": ""})
    assert res.exit_code != 0 and "--tenants" in res.output


def test_a_records_row_written_without_recording_has_no_path() -> None:
    assert cdr.from_summary(summary(new_uuid())).recording_path is None
