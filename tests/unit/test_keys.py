"""Every Redis key builder: one prefix style, exactly one hash tag per key."""

from __future__ import annotations

import inspect
import re

from cc_core import keys as product_keys
from esl_handlers import keys as esl_keys

# cc:{<kind>:<id>}:<name>[:<more>] - exactly one pair of braces.
STYLE = re.compile(r"^cc:\{(?:[a-z]:[^{}:]+|g)\}(:[A-Za-z0-9_.-]+)+$")


def _builders() -> list[tuple[str, object]]:
    out = []
    for module in (product_keys, esl_keys):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                out.append((f"{module.__name__}.{name}", fn))
    return out


def test_every_key_builder_has_one_prefix_style_and_exactly_one_hash_tag() -> None:
    builders = _builders()
    assert len(builders) >= 5, [n for n, _ in builders]
    for name, fn in builders:
        params = inspect.signature(fn).parameters        # type: ignore[arg-type]
        key = fn(*[f"x{i}" for i in range(len(params))])  # type: ignore[operator]
        assert STYLE.match(key), f"{name}: {key!r} is not cc:{{tag}}:name"
        assert key.count("{") == 1 and key.count("}") == 1, f"{name}: {key!r}"


def test_a_tenants_keys_share_one_slot_tag() -> None:
    tags = {re.search(r"\{[^}]+\}", product_keys.call("acme", "u1")).group(0),  # type: ignore[union-attr]
            re.search(r"\{[^}]+\}", product_keys.calls_stream("acme")).group(0)}  # type: ignore[union-attr]
    assert tags == {"{t:acme}"}


# Which argument of a builder names the owner of the key's slot, and the tag it must give.
OWNER_TAGS = {"tenant": "t", "node": "n", "worker_id": "w"}
# Builders without an owner: the tenant directory and its counter, swapped together by one
# script in the one global slot. A new builder lands here only on purpose.
GLOBAL_BUILDERS = {"cc_core.keys.directory", "cc_core.keys.directory_version",
                   "cc_core.keys.config_seq",
                   "cc_core.keys.calls_tenants"}   # the tenants with a calls stream
# SCAN patterns, not keys: the call-record consumer's safety net over every tenant's stream.
PATTERNS = {"cc_core.keys.calls_stream_pattern"}


def _hash_tag(key: str) -> str:
    """What Redis Cluster hashes: from the first "{" to the next "}" when not empty."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


def test_every_key_of_a_tenant_node_or_worker_hashes_to_that_owners_slot_alone() -> None:
    """On Redis Cluster a script's keys must share a slot: every key built for a tenant
    carries {t:<tenant>} (and nothing else picks the slot), so one tenant's scripts never
    fail with CROSSSLOT and two tenants spread over masters."""
    from redis.crc import key_slot

    for name, fn in _builders():
        if name in PATTERNS:
            continue
        params = list(inspect.signature(fn).parameters)   # type: ignore[arg-type]
        owners = [p for p in params if p in OWNER_TAGS]
        if not owners:
            assert name in GLOBAL_BUILDERS, (
                f"{name} builds a key for no tenant, node or worker: give it a `tenant` "
                "parameter and the {t:<tenant>} tag, or list it in GLOBAL_BUILDERS if it "
                "really is one global key")
            assert _hash_tag(fn()) == "g", name          # type: ignore[operator]
            continue
        assert len(owners) == 1, f"{name}: one owner per key, got {owners}"
        for owner_id in ("acme", "globex-2"):
            args = [owner_id if p == owners[0] else f"x{i}" for i, p in enumerate(params)]
            key = fn(*args)                               # type: ignore[operator]
            tag = f"{OWNER_TAGS[owners[0]]}:{owner_id}"
            assert _hash_tag(key) == tag, f"{name}: {key!r} does not hash on {{{tag}}}"
            assert key_slot(key.encode()) == key_slot(f"{{{tag}}}".encode()), name


def test_no_lua_script_builds_a_key_of_its_own() -> None:
    """Keys reach scripts in KEYS (or, in the ACD, are built from KEYS[1], the tenant's
    prefix): a key name written in a script would land in whatever slot its text hashes to."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    scripts = [p for d in ("acd/lua", "cc_core/lua", "esl_handlers/lua")
               for p in sorted((root / d).glob("*.lua"))]
    assert len(scripts) >= 15
    named = [f"{path.name}:{n}: {line.strip()}"
             for path in scripts
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"""['"]cc:|\{[tgnw][:}]""", line.split("--", 1)[0])]
    assert named == [], ("these lines name a key themselves; pass it in KEYS (built in "
                         f"cc_core/keys.py) or build it from the tenant's prefix: {named}")
