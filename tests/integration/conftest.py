"""The ``cluster`` fixture: a simulator process plus worker processes started on demand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster, running_cluster


@pytest.fixture(name="cluster")
def _cluster(tmp_path: Path, redis_url: str) -> Iterator[Cluster]:
    yield from running_cluster(tmp_path, redis_url)
