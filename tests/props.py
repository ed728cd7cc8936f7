"""Property tests in two runs: fixed examples, and new ones each time (seed printed).

Each property is collected twice:

* ``test_<name>``: derandomised, so it runs the same examples on every run and machine (a
  failure there is a regression, never bad luck);
* ``test_<name>_explored``: seeded from ``EXPLORE_SEED`` (``CC_HYPOTHESIS_SEED`` when set,
  else a fresh random number), no example database, so every run tries examples the fixed
  run never saw. The seed is in pytest's header line and in the report of a failing
  example; ``CC_HYPOTHESIS_SEED=<seed> pytest <test id>`` replays it exactly.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable
from typing import Any

from hypothesis import given, note, seed, settings
from hypothesis.strategies import SearchStrategy

EXPLORE_SEED = int(os.environ.get("CC_HYPOTHESIS_SEED") or secrets.randbelow(2**32))
REPLAY = f"CC_HYPOTHESIS_SEED={EXPLORE_SEED}"


def twice(max_examples: int = 200, **strategies: SearchStrategy[Any]
          ) -> Callable[[Callable[..., None]], tuple[Any, Any]]:
    """``test_x, test_x_explored = twice(n, arg=strategy)(_x)``: the property ``_x`` as a
    fixed test and an exploring test (``max_examples`` each; other args are fixtures)."""
    common: dict[str, Any] = {"max_examples": max_examples, "deadline": None,
                              "suppress_health_check": list(_health_checks())}

    def make(prop: Callable[..., None]) -> tuple[Any, Any]:
        fixed = settings(derandomize=True, **common)(given(**strategies)(prop))

        @functools.wraps(prop)
        def noted(*args: Any, **kwargs: Any) -> None:
            note(f"exploration seed {EXPLORE_SEED}; replay with {REPLAY}")
            prop(*args, **kwargs)

        explored = seed(EXPLORE_SEED)(settings(derandomize=False, database=None, **common)(
            given(**strategies)(noted)))
        return fixed, explored

    return make


def _health_checks() -> tuple[Any, ...]:
    from hypothesis import HealthCheck

    return (HealthCheck.too_slow, HealthCheck.data_too_large)
