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
