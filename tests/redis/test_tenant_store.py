"""Tenant config in Redis: what is applied is what workers route by, a new version reaches a
running worker within refresh_s, a worker never mixes two versions, and nothing is written by a
dry run or a refused config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from cc_core.cli import cli
from cc_core.errors import ConfigConflict, ConfigError, UnknownTenant
from cc_core.redis_server import PrivateRedis
from cc_core.tenants.loader import load_path
from cc_core.tenants.model import AnswerMode, Destination, DestinationKind
from cc_core.tenants.store import TenantDirectory, TenantStore
from tests.conftest import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tenants" / "acme.yaml"


def tenant_yaml(tid: str, numbers: list[str], name: str = "") -> str:
    nums = "".join(f'\n  "{n}": {{}}' for n in numbers) or " {}"
    return f"tenant: {tid}\nname: {name or tid}\nentry: hangup\nnumbers:{nums}\n"


def folder(path: Path, tenants: dict[str, list[str]], names: dict[str, str] | None = None,
           acme: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f in path.iterdir():
        f.unlink()
    if acme:
        shutil.copy(EXAMPLE, path / "acme.yaml")
    for tid, numbers in tenants.items():
        (path / f"{tid}.yaml").write_text(tenant_yaml(tid, numbers, (names or {}).get(tid, "")),
                                          encoding="utf-8")
    return path


def everything(r: redis.Redis) -> dict[bytes, object]:
    return {k: (r.type(k), r.dump(k)) for k in sorted(r.keys("*"))}


def commands_served(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_apply_then_a_worker_routes_by_it(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    cfg = folder(tmp_path / "cfg", {"beta": ["4006660001"]}, acme=True)
    (tmp_path / "cfg" / "_global.yaml").write_text("blacklist: {prefixes: ['165']}\n")
    result = TenantStore(r).apply(load_path(cfg))
    assert (result.version, result.added, result.written) == (1, ("acme", "beta"), True)

    workers = TenantDirectory(r)
    found = workers.lookup("4008005678")
    assert found is not None
    tenant, number = found
    assert tenant.tenant == "acme" and number.answer_mode is AnswerMode.GREETING
    assert number.entry == Destination(kind=DestinationKind.QUEUE, target="sales")
    assert tenant.menus["main"].options["9"] == Destination(kind=DestinationKind.HANGUP)
    beta = workers.lookup("4006660001")
    assert beta is not None and beta[0].tenant == "beta"
    assert workers.lookup("4009999999") is None
    assert workers.tenant("beta") is not None and workers.tenant("nobody") is None
    assert workers.global_config().blacklist.prefixes == ["165"]
    assert workers.version == 1


def test_a_running_worker_sees_a_new_version_within_refresh_s(redis_url: str,
                                                              tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"], "gamma": []})))
    workers = TenantDirectory(r, refresh_s=0.3)
    assert workers.lookup("4006660001")[0].tenant == "beta"  # type: ignore[index]

    # The number moves to gamma, and beta is removed.
    store.apply(load_path(folder(tmp_path / "c", {"gamma": ["4006660001"]})))
    applied = time.monotonic()
    wait_for(lambda: (workers.lookup("4006660001") or [None])[0].tenant == "gamma",  # type: ignore[union-attr]
             timeout=2, message="the worker to route by version 2")
    assert time.monotonic() - applied < 0.3 + 0.2  # refresh_s, plus the reload and polling
    assert workers.tenant("beta") is None and workers.version == 2


def test_lookups_cost_no_redis_round_trip_until_refresh_s(redis_url: str,
                                                         tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]}, {"beta": "old"})))
    clock = FakeClock()
    workers = TenantDirectory(r, refresh_s=1.0, clock=clock)
    assert workers.tenant("beta").name == "old"  # type: ignore[union-attr]
    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]}, {"beta": "new"})))

    before = commands_served(r)
    clock.now += 0.99
    for _ in range(10_000):
        found = workers.lookup("4006660001")
    assert commands_served(r) - before == 0
    assert found is not None and found[0].name == "old"  # cached until refresh_s passes

    clock.now += 0.01
    assert workers.tenant("beta").name == "new"  # type: ignore[union-attr]
    before = commands_served(r)
    clock.now += 1.0
    for _ in range(1000):
        workers.lookup("4006660001")
    assert commands_served(r) - before == 1  # one GET of the version, nothing changed


GREENLETS_SCRIPT = """
from gevent import monkey

monkey.patch_all()
import json, sys, time

import gevent
import redis

from cc_core.tenants.store import TenantDirectory

r = redis.Redis.from_url(sys.argv[1])
workers = TenantDirectory(r, refresh_s=0.05)
workers.lookup("4006660001")
gets = lambda: r.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
before, found, deadline = gets(), [0], time.monotonic() + 1.0

def handler():
    while time.monotonic() < deadline:
        found[0] += workers.lookup("4006660001") is not None
        gevent.sleep(0.001)

gevent.joinall([gevent.spawn(handler) for _ in range(200)])
print(json.dumps({"gets": gets() - before, "found": found[0]}))
"""


def test_greenlets_of_a_worker_share_one_version_check(redis_url: str, tmp_path: Path) -> None:
    """In a monkey-patched worker, 200 call handlers looking up numbers for 1 s with
    refresh_s=0.05 cause about 20 GETs, not one per handler per period: while one handler
    waits on the version check, the others answer from the snapshot."""
    TenantStore(redis.Redis.from_url(redis_url)).apply(
        load_path(folder(tmp_path / "c", {"beta": ["4006660001"]})))
    res = subprocess.run([sys.executable, "-c", GREENLETS_SCRIPT, redis_url],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["found"] > 10_000
    assert 5 <= out["gets"] <= 40, out


def test_readers_never_mix_two_versions_while_applies_race(redis_url: str,
                                                           tmp_path: Path) -> None:
    """Two writers apply configs in which numbers X and Y swap tenants at every version, with a
    generation in both tenants' names; readers check on every lookup that the tenant they got
    holds the number and is the one that generation gives it to. A reader mixing a directory
    of one version with a tenant of another would get a tenant without the number, or the
    wrong tenant for its generation. Threads, not greenlets: nothing here is monkey-patched, and
    threads interleave inside the Redis calls, where a torn read would happen."""
    r = redis.Redis.from_url(redis_url, max_connections=64)
    x, y = "4006660001", "4006660002"
    applies_per_writer = 60
    errors: list[str] = []
    versions_seen: set[int] = set()
    lookups = [0]
    stop = threading.Event()

    def config_for(gen: int, where: Path) -> Path:
        first, second = ("acme", "beta") if gen % 2 == 0 else ("beta", "acme")
        return folder(where, {first: [x], second: [y]}, {"acme": f"gen {gen}",
                                                         "beta": f"gen {gen}"})

    TenantStore(r).apply(load_path(config_for(0, tmp_path / "w0")))

    def writer(index: int) -> None:
        store = TenantStore(r)
        for i in range(applies_per_writer):
            gen = 1 + index + 2 * i
            loaded = load_path(config_for(gen, tmp_path / f"w{index}"))
            while True:
                try:
                    store.apply(loaded)
                    break
                except ConfigConflict:
                    continue

    def reader() -> None:
        workers = TenantDirectory(r, refresh_s=0)
        last = 0
        while not stop.is_set():
            for dnis, owner_when_even in ((x, "acme"), (y, "beta")):
                found = workers.lookup(dnis)
                lookups[0] += 1
                if found is None:
                    errors.append(f"{dnis} not found")
                    continue
                tenant, _ = found
                gen = int(tenant.name.split()[1])
                expected = owner_when_even if gen % 2 == 0 else \
                    ({"acme", "beta"} - {owner_when_even}).pop()
                if tenant.tenant != expected or dnis not in tenant.numbers:
                    errors.append(f"{dnis} -> {tenant.tenant} of gen {gen}")
            version = workers.version
            if version < last:
                errors.append(f"went back from version {last} to {version}")
            last = version
            versions_seen.add(version)

    def cold_reader() -> None:
        # A worker starting mid-switch: its very first load must find a whole version.
        while not stop.is_set():
            try:
                if TenantDirectory(r).lookup(x) is None:
                    errors.append(f"cold start: {x} not found")
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(f"cold start: {exc}")

    readers = [threading.Thread(target=reader) for _ in range(3)]
    readers += [threading.Thread(target=cold_reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=90)
    stop.set()
    for t in readers:
        t.join(timeout=10)
    assert not errors, errors[:10]
    final = TenantDirectory(r).lookup(x)
    # Whichever writer finished last, its last config is what stays applied.
    assert final is not None and final[0].name in (f"gen {2 * applies_per_writer - 1}",
                                                   f"gen {2 * applies_per_writer}")
    assert len(versions_seen) > 20 and lookups[0] > 1000, (len(versions_seen), lookups[0])


def test_concurrent_single_file_applies_lose_no_tenant(redis_url: str, tmp_path: Path) -> None:
    """Operators applying different tenants' files at the same moment: each apply is computed
    from the directory it read, so without the compare-and-set one would drop the other's."""
    r = redis.Redis.from_url(redis_url, max_connections=64)
    files = []
    for i in range(12):
        f = tmp_path / f"t{i}.yaml"
        f.write_text(tenant_yaml(f"t{i}", [f"40066601{i:02d}"]))
        files.append(load_path(f))
    start = threading.Barrier(len(files))
    versions: list[int] = []

    def operator(loaded: object) -> None:
        start.wait()
        versions.append(TenantStore(r).apply(loaded).version)  # type: ignore[arg-type]

    threads = [threading.Thread(target=operator, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    workers = TenantDirectory(r)
    assert [t for t in (f"t{i}" for i in range(12)) if workers.tenant(t) is None] == []
    # Each got a version of its own (numbers lost to a recomputation are skipped).
    assert len(set(versions)) == 12 and workers.version == max(versions)


def test_a_worker_keeps_routing_by_the_last_version_while_redis_is_down(tmp_path: Path) -> None:
    cfg = load_path(folder(tmp_path / "c", {"beta": ["4006660001"]}))
    with PrivateRedis() as server:  # its own server: this test stops it
        r = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
        TenantStore(r).apply(cfg)
        clock = FakeClock()
        workers = TenantDirectory(r, clock=clock)
        assert workers.lookup("4006660001") is not None
        server.stop()
        clock.now += 5
        found = workers.lookup("4006660001")
        assert found is not None and found[0].tenant == "beta" and workers.version == 1


def test_dry_run_prints_the_diff_and_writes_nothing(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    first = store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]})),
                        dry_run=True)
    assert first.added == ("beta",) and not first.written and r.keys("*") == []
    assert "+tenant: beta\n" in first.diffs["beta"]

    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]})))
    before = everything(r)
    preview = store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]},
                                           {"beta": "Beta Ltd"})), dry_run=True)
    assert preview.changed == ("beta",) and preview.version == 1
    assert "-name: beta\n+name: Beta Ltd\n" in preview.diffs["beta"]
    assert everything(r) == before
    assert TenantDirectory(r).tenant("beta").name == "beta"  # type: ignore[union-attr]


def test_applying_the_same_config_again_writes_no_new_version(redis_url: str,
                                                               tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"]}, acme=True)
    store.apply(load_path(cfg))
    before = everything(r)
    again = store.apply(load_path(cfg))
    assert again.unchanged and again.version == 1 and not again.written
    assert everything(r) == before


def test_a_single_file_changes_only_its_tenant(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"], "gamma": ["4006660002"]})
    (cfg / "_global.yaml").write_text("blacklist: {numbers: ['13000000001']}\n")
    store.apply(load_path(cfg))
    single = tmp_path / "delta-draft.yaml"
    single.write_text(tenant_yaml("delta", ["4006660003"]))
    result = store.apply(load_path(single))
    assert result.added == ("delta",) and result.removed == ()
    workers = TenantDirectory(r)
    assert {t: workers.tenant(t) is not None for t in ("beta", "gamma", "delta")} == \
        {"beta": True, "gamma": True, "delta": True}
    assert workers.global_config().blacklist.numbers == ["13000000001"]


def test_a_refused_config_applies_nothing(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]})))
    before = everything(r)
    # A single file taking a number that an applied tenant it leaves in place still holds.
    single = tmp_path / "gamma.yaml"
    single.write_text(tenant_yaml("gamma", ["4006660009", "4006660001"]))
    with pytest.raises(ConfigError) as err:
        store.apply(load_path(single))
    assert (f"{single}: at numbers.4006660001: 4006660001 belongs to applied tenant 'beta' "
            "(version 1)") in str(err.value)
    assert everything(r) == before
    # And through the command: a config with a mistake writes nothing either.
    bad = folder(tmp_path / "bad", {"beta": ["40066600"]})
    res = CliRunner().invoke(cli, ["config", "apply", str(bad), "--redis-url", redis_url])
    assert res.exit_code == 2 and "at numbers.40066600" in res.output
    assert everything(r) == before


def test_show_prints_what_was_applied(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]}, acme=True)))
    text = store.show("acme")
    assert text.startswith("# tenant acme: configuration version 1, applied ")
    assert "\nname: 艾克米电器 客服中心\n" in text and "\n  '4008009999':\n" in text
    # What show prints is a tenant file: it loads back into what was applied.
    (tmp_path / "shown").mkdir()
    (tmp_path / "shown" / "acme.yaml").write_text(text, encoding="utf-8")
    assert load_path(tmp_path / "shown").tenants["acme"] == load_path(EXAMPLE).tenants["acme"]
    with pytest.raises(UnknownTenant, match=r"tenant 'acne' is not in the applied "
                                            r"configuration \(version 1; tenants: acme, beta;"):
        store.show("acne")


def test_show_global_prints_the_applied_platform_blacklist(redis_url: str,
                                                            tmp_path: Path) -> None:
    store = TenantStore(redis.Redis.from_url(redis_url))
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"]})
    (cfg / "_global.yaml").write_text("blacklist: {prefixes: ['165', '170']}\n")
    store.apply(load_path(cfg))
    text = store.show("_global")
    assert text.startswith("# global config: configuration version 1, applied ")
    assert "  prefixes:\n  - '165'\n  - '170'\n" in text


def test_show_before_anything_was_applied_says_how_to_apply(redis_url: str) -> None:
    with pytest.raises(UnknownTenant, match="cc-core config apply PATH"):
        TenantStore(redis.Redis.from_url(redis_url)).show("acme")


def test_old_versions_are_pruned_and_a_removed_tenant_expires(redis_url: str,
                                                              tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    store = TenantStore(r)
    for gen in range(8):
        store.apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"], "gamma": []},
                                     {"beta": f"gen {gen}"})))
    assert sorted(r.keys("cc:{t:beta}:config:v[0-9]*")) == [
        f"cc:{{t:beta}}:config:v{v}".encode() for v in (4, 5, 6, 7, 8)]
    assert r.keys("cc:{t:gamma}:config:v[0-9]*") == [b"cc:{t:gamma}:config:v1"]  # never changed
    store.apply(load_path(folder(tmp_path / "c", {"gamma": []})))
    assert TenantDirectory(r).tenant("beta") is None
    assert 0 < r.ttl("cc:{t:beta}:config:v8") <= 7 * 24 * 3600


def test_each_apply_is_announced_on_the_channel(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("cc:config")
    TenantStore(r).apply(load_path(folder(tmp_path / "c", {"beta": ["4006660001"]})))
    message = wait_for(lambda: sub.get_message(timeout=0.1), message="cc:config message")
    assert message["data"] == b"1"  # type: ignore[index]
    sub.close()


# -- the commands, against this Redis ---------------------------------------------------------

def test_config_apply_show_and_dry_run_commands(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    runner = CliRunner()
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"]})
    res = runner.invoke(cli, ["config", "apply", str(cfg), "--dry-run"],
                        env={"CC_REDIS_URL": redis_url})
    assert res.exit_code == 0, res.output
    assert "+tenant: beta\n" in res.output
    assert res.output.endswith("dry run: would add beta (applied now: version 0); "
                               "nothing written\n")
    assert r.keys("*") == []

    res = runner.invoke(cli, ["config", "apply", str(cfg), "--redis-url", redis_url])
    assert res.exit_code == 0, res.output
    assert res.output.endswith("applied version 1 (was 0): added beta\n")

    res = runner.invoke(cli, ["config", "show", "beta", "--redis-url", redis_url])
    assert res.exit_code == 0 and "\ntenant: beta\n" in res.output
    res = runner.invoke(cli, ["config", "show", "zeta", "--redis-url", redis_url])
    assert res.exit_code == 1 and "tenant 'zeta' is not in the applied configuration" \
        in res.output


def test_config_commands_without_redis_say_how_to_name_one(tmp_path: Path) -> None:
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"]})
    for args in (["apply", str(cfg)], ["show", "beta"]):
        res = CliRunner().invoke(cli, ["config", *args], env={"CC_REDIS_URL": ""})
        assert res.exit_code == 2
        assert "pass --redis-url redis://HOST:PORT/DB or set CC_REDIS_URL" in res.output


def test_a_config_applied_again_after_redis_lost_its_data_reaches_running_workers(
        redis_url: str, tmp_path: Path) -> None:
    # Redis restarted empty (no persistence): workers keep the version they hold; when the
    # operator applies the configuration again its number restarts at 1, and it must still win.
    r = redis.Redis.from_url(redis_url)
    clock = FakeClock()
    store = TenantStore(r, clock=clock)
    for i in range(3):
        clock.now += 60
        store.apply(load_path(folder(tmp_path / "cfg", {"beta": ["4006660001"]},
                                     names={"beta": f"v{i}"})))
    workers = TenantDirectory(r, refresh_s=0)
    assert workers.version == 3 and workers.tenant("beta").name == "v2"  # type: ignore[union-attr]
    r.flushall()
    assert workers.tenant("beta").name == "v2", "kept while Redis is empty"  # type: ignore[union-attr]
    clock.now += 60     # applied later, as an operator would
    again = TenantStore(r, clock=clock).apply(load_path(folder(tmp_path / "cfg", {"beta": ["4006660001"]},
                                                  names={"beta": "after"})))
    assert again.version == 1
    assert workers.tenant("beta").name == "after"  # type: ignore[union-attr]
