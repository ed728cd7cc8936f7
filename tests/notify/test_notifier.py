"""Missed-call notices against a real HTTP server on loopback that fails, then recovers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from cc_core.tenants.model import MissedCallWebhook
from notify import keys
from notify.notifier import MissedCallNotifier
from tests.records.helpers import abandoned_in_queue, append, summary

SECRET = "s3cret-s3cret-s3cret"


class Endpoint:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.got: list[tuple[dict[str, str], bytes, int]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if endpoint.failures > 0 else 204
                endpoint.failures -= 1
                endpoint.got.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/missed"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint(failures=2)
    yield e
    e.close()


def test_a_failing_endpoint_gets_the_notice_again_with_backoff_until_it_recovers(
        redis_url: str, endpoint: Endpoint) -> None:
    r = redis.Redis.from_url(redis_url)
    now = [1_000_000.0]
    hooks = {"acme": MissedCallWebhook(url=endpoint.url, secret=SECRET)}
    n = MissedCallNotifier(r, hooks.get, "n1", clock=lambda: now[0])
    append(r, summary("warmup"))            # the group starts from its creation
    n.collect()
    append(r, abandoned_in_queue("missed-1"))
    append(r, summary("answered-1"))                      # answered: no notice
    append(r, abandoned_in_queue("other-1", "beta"))      # beta has no webhook
    assert n.collect() == 1
    assert n.deliver() == 0                                # 500
    assert n.deliver() == 0 and len(endpoint.got) == 1     # not due again yet
    now[0] += 1                                            # first backoff: 1 s
    assert n.deliver() == 0 and len(endpoint.got) == 2     # 500 again
    now[0] += 1
    assert n.deliver() == 0 and len(endpoint.got) == 2     # second backoff: 2 s
    now[0] += 1
    assert n.deliver() == 1 and len(endpoint.got) == 3     # recovered: 204
    now[0] += 600
    assert n.deliver() == 0 and len(endpoint.got) == 3     # delivered once, not again
    headers, body, _ = endpoint.got[-1]
    notice = json.loads(body)
    assert (notice["call_uuid"], notice["disposition"]) == ("missed-1", "abandoned_in_queue")
    stamp = headers["x-cc-timestamp"]
    want = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-cc-signature"] == f"sha256={want}"
    assert {h["x-cc-delivery"] for h, _, _ in endpoint.got} == {"missed-1"}
    assert r.hlen(keys.pending()) == 0


def test_a_dead_endpoint_is_given_up_after_its_attempts(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    now = [0.0]
    dead = MissedCallWebhook(url="http://127.0.0.1:9/nothing", secret=SECRET, max_attempts=3)
    n = MissedCallNotifier(r, {"acme": dead}.get, "n1", clock=lambda: now[0], timeout_s=1)
    n.collect()
    append(r, abandoned_in_queue("m"))
    n.collect()
    for _ in range(3):
        n.deliver()
        now[0] += 10
    assert r.zcard(keys.due()) == 0 and r.hlen(keys.pending()) == 0


def test_the_call_path_holds_no_notifier() -> None:
    # Delivery is the notifier's own greenlet: nothing in the hang-up pipeline sends HTTP.
    import inspect

    from cc_core import app
    from cc_core.flow import hangup, machine

    for module in (hangup, machine):
        assert "notify" not in inspect.getsource(module)
    assert "MissedCallNotifier" in inspect.getsource(app.build)
