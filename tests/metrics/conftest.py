"""Fixtures for tests against the real Prometheus tools (Debian's package, ``make deps``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "metrics" / "prometheus"


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make deps` (Debian's prometheus package, "
                    "its service kept from starting)")
    return path
