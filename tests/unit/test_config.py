"""Broken config must say which file, which path inside it, and what would be accepted."""

from __future__ import annotations

import pytest

from cc_core import config
from cc_core.errors import ConfigError


def test_defaults_are_usable() -> None:
    cfg = config.load(environ={})
    assert cfg.esl.lease_ttl_ms == 5000
    assert cfg.esl.heartbeat_interval_s == 20
    assert "ALL" not in cfg.esl.events and "CHANNEL_PARK" in cfg.esl.events


def test_yaml_file_then_env_then_overrides(tmp_path) -> None:
    f = tmp_path / "cc.yaml"
    f.write_text("nodes:\n  - {name: fs1, host: 127.0.0.1, port: 8021}\nredis_url: redis://a/0\n")
    cfg = config.load(f, environ={"CC_REDIS_URL": "redis://b/0"})
    assert cfg.redis_url == "redis://b/0"
    assert cfg.nodes[0].name == "fs1"
    cfg = config.load(f, overrides={"redis_url": "redis://c/0"}, environ={"CC_REDIS_URL": "redis://b/0"})
    assert cfg.redis_url == "redis://c/0"


def test_error_names_file_path_and_value(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("nodes:\n  - {name: fs1, port: 99999}\n")
    with pytest.raises(ConfigError) as err:
        config.load(f, environ={})
    text = str(err.value)
    assert str(f) in text and "nodes.0.port" in text and "99999" in text


def test_subscribing_to_all_is_refused(tmp_path) -> None:
    f = tmp_path / "all.yaml"
    f.write_text("esl: {events: [ALL]}\n")
    with pytest.raises(ConfigError, match="explicit list"):
        config.load(f, environ={})


def test_unknown_key_and_not_yaml(tmp_path) -> None:
    f = tmp_path / "typo.yaml"
    f.write_text("nodez: []\n")
    with pytest.raises(ConfigError, match="nodez"):
        config.load(f, environ={})
    f.write_text("nodes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(f, environ={})


def test_duplicate_node_names(tmp_path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text("nodes: [{name: a}, {name: a}]\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        config.load(f, environ={})


def test_password_not_in_repr() -> None:
    node = config.NodeConfig(name="fs1", password="s3cret-pw")
    assert "s3cret-pw" not in repr(node)


def test_custom_subclass_keeps_its_case(tmp_path) -> None:
    f = tmp_path / "cc.yaml"
    f.write_text("esl: {events: [channel_park, 'CUSTOM callcenter::info']}\n")
    cfg = config.load(f, environ={})
    assert cfg.esl.events == ["CHANNEL_PARK", "CUSTOM callcenter::info"]


def test_a_misspelt_event_name_is_refused_with_a_suggestion(tmp_path) -> None:
    f = tmp_path / "typo.yaml"
    f.write_text("esl: {events: [CHANNEL_PARK, CHANEL_ANSWER]}\n")
    with pytest.raises(ConfigError, match="did you mean CHANNEL_ANSWER"):
        config.load(f, environ={})


def test_a_redis_cluster_is_named_by_the_redis_cluster_scheme(tmp_path) -> None:
    from cc_core import redisconn

    cfg = config.load(environ={"CC_REDIS_URL": "redis+cluster://10.0.0.5:7000"})
    assert redisconn.is_cluster(cfg.redis_url or "")
    assert not redisconn.is_cluster("redis://10.0.0.5:6379/0")
    f = tmp_path / "cc.yaml"
    f.write_text("redis_url: http://10.0.0.5:7000\n")
    with pytest.raises(ConfigError) as err:
        config.load(f, environ={})
    assert "redis_url" in str(err.value) and "redis+cluster://" in str(err.value)
    with pytest.raises(ConfigError, match="database 0 only"):
        config.load(environ={"CC_REDIS_URL": "redis+cluster://10.0.0.5:7000/3"})


def test_the_record_store_comes_from_the_file_and_cc_records_db_keeps_its_other_keys(
        tmp_path) -> None:
    assert config.load(environ={}).records.db == "records.sqlite3"
    f = tmp_path / "cc.yaml"
    f.write_text("records: {db: /var/lib/cc/r.sqlite3, consume_in_worker: true}\n")
    cfg = config.load(f, environ={"CC_RECORDS_DB": "postgresql://cc@db/cc"})
    assert (cfg.records.db, cfg.records.consume_in_worker) == ("postgresql://cc@db/cc", True)


def test_a_realtime_priority_outside_sched_rr_range_is_refused(tmp_path) -> None:
    f = tmp_path / "cc.yaml"
    f.write_text("realtime_priority: 120\n")
    with pytest.raises(ConfigError) as err:
        config.load(f, environ={})
    assert "realtime_priority" in str(err.value) and "99" in str(err.value)
    f.write_text("realtime_priority: 20\n")
    assert config.load(f, environ={}).realtime_priority == 20
    assert config.load(None, environ={}).realtime_priority is None
    assert config.load(f, environ={"CC_REALTIME_PRIORITY": "30"}).realtime_priority == 30
    with pytest.raises(ConfigError) as err:
        config.load(None, environ={"CC_REALTIME_PRIORITY": "high"})
    assert "realtime_priority" in str(err.value) and "'high'" in str(err.value)
