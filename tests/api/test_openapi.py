"""docs/openapi.json is what `cc-core api openapi` generates from the models: never stale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cc_core.api.app import openapi_json
from cc_core.cli import cli

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_document_equals_the_generated_one(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    res = CliRunner().invoke(cli, ["api", "openapi", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "docs/openapi.json is stale: run cc-core api openapi --out docs/openapi.json "
        "and commit it")


def test_generation_is_the_same_in_a_fresh_process() -> None:
    res = subprocess.run([sys.executable, "-m", "cc_core.cli", "api", "openapi"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == openapi_json()


def test_document_describes_bodies_errors_and_the_bearer_scheme() -> None:
    doc = json.loads(openapi_json())
    op = doc["paths"]["/v1/tenants/{tenant}/queues/{queue}/callbacks"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CallbackIn")
    assert set(op["responses"]) >= {"200", "401", "403", "404", "409", "422"}
    assert doc["security"] == [{"bearer": []}]      # every route, unless it says otherwise
    assert "error" in doc["components"]["schemas"]["ErrorBody"]["properties"]
