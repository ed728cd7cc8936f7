"""cc-core api serve: the app on gevent's WSGIServer, on loopback, until SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from cc_core.api.tokens import Role

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                 if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_answers_on_loopback_and_stops_on_sigterm(redis_url, tokens, acd) -> None:
    from tests.conftest import wait_for

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cc_core.cli", "api", "serve", "--listen",
                             f"127.0.0.1:{port}", "--redis-url", redis_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return _get(f"{base}/v1/openapi.json")[0] == 200
            except OSError:
                return False

        wait_for(up, timeout=20, message="the API to listen")
        token, _ = tokens.create("acme", Role.SUPERVISOR)
        status, body = _get(f"{base}/v1/tenants/acme/agents", token)
        assert status == 200 and [a["agent"] for a in body["agents"]] == ["1001", "1002"]
        status, body = _get(f"{base}/v1/tenants/beta/agents", token)
        assert status == 403 and body["error"] == "forbidden"
        status, body = _get(f"{base}/v1/tenants/acme/agents")
        assert status == 401 and body["error"] == "unauthorized"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
