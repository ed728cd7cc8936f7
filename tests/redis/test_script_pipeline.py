"""``cc_core.redisconn.run_pipeline``: a pipeline carrying scripts costs one round trip, and
still runs when the server has lost its scripts (restarted empty, SCRIPT FLUSH)."""

from __future__ import annotations

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

    # The script ran once (its first try was refused); the plain write ran twice, which is
    # why only idempotent writes may share such a pipeline.
    assert replies == [2, 2]
    assert client.lrange("log", 0, -1) == [b"warm", b"a"]
    assert client.script_exists(script.sha) == [True]
    # The pipeline is usable again afterwards, in one round trip.
    client.config_resetstat()
    script(keys=["log"], args=["b"], client=pipe)
    assert run_pipeline(pipe) == [3]
    assert "script|exists" not in _round_trips(client)
