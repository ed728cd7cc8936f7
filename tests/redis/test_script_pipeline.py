"""``cc_core.redisconn.run_pipeline``: a pipeline carrying scripts costs one round trip, and
still runs when the server has lost its scripts (restarted empty, SCRIPT FLUSH)."""

from __future__ import annotations

import pytest
import redis

from cc_core.redisconn import run_pipeline

# Appends its argument to a list: run twice, it shows twice (what a re-run would repeat).
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


def _round_trips(client: redis.Redis) -> dict[str, int]:
    """Commands the server was sent since the last CONFIG RESETSTAT, by name."""
    return {name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in client.info("commandstats").items()}


def test_a_pipeline_with_a_loaded_script_asks_nothing_before_it_runs(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    script = client.register_script(APPEND)
    script(keys=["log"], args=["warm"])          # loaded once, as a worker's first call does
    client.config_resetstat()

    pipe = client.pipeline(transaction=False)
    script(keys=["log"], args=["a"], client=pipe)
    pipe.set("saved", "1")
    replies = run_pipeline(pipe)

    assert replies == [2, True]
    sent = _round_trips(client)
    assert "script|exists" not in sent and "script|load" not in sent, sent
    assert sent["evalsha"] == 1


def test_a_pipeline_whose_scripts_the_server_lost_loads_them_and_runs_once_more(
        redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    script = client.register_script(APPEND)
    script(keys=["log"], args=["warm"])
    client.script_flush()                         # as a Redis restarted empty

    pipe = client.pipeline(transaction=False)
    script(keys=["log"], args=["a"], client=pipe)
    pipe.incr("writes")
    replies = run_pipeline(pipe)

    # The script ran once (its first try was refused), the plain write once too.
    assert replies == [2, 1]
    assert client.lrange("log", 0, -1) == [b"warm", b"a"]
    assert client.get("writes") == b"1"
    assert client.script_exists(script.sha) == [True]
    # The pipeline is usable again afterwards, in one round trip.
    client.config_resetstat()
    script(keys=["log"], args=["b"], client=pipe)
    assert run_pipeline(pipe) == [3]
    assert "script|exists" not in _round_trips(client)


def test_a_script_that_ran_is_not_run_again_when_another_was_refused(redis_url: str) -> None:
    # After a restart scripts come back one by one (whoever calls one first loads it): a
    # pipeline may find one loaded and the next not. What ran must not run again (a dispatch
    # run twice loses the offers of its first run), and every reply comes back.
    client = redis.Redis.from_url(redis_url)
    first = client.register_script(APPEND)
    second = client.register_script("return redis.call('INCR', KEYS[1])")
    first(keys=["log"], args=["warm"])
    second(keys=["n"])
    client.script_flush()
    first(keys=["log"], args=["reloaded"])        # loaded again by someone; `second` is not

    pipe = client.pipeline(transaction=False)
    first(keys=["log"], args=["a"], client=pipe)
    second(keys=["n"], client=pipe)
    first(keys=["log"], args=["b"], client=pipe)
    assert run_pipeline(pipe) == [3, 2, 4]
    assert client.lrange("log", 0, -1) == [b"warm", b"reloaded", b"a", b"b"]
    assert client.get("n") == b"2"


def test_an_error_other_than_a_missing_script_is_raised(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    boom = client.register_script("return redis.error_reply('BOOM the script failed')")
    client.set("text", "x")
    pipe = client.pipeline(transaction=False)
    boom(keys=[], client=pipe)
    pipe.incr("text")
    with pytest.raises(redis.ResponseError, match="BOOM"):
        run_pipeline(pipe)
