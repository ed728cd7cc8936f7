"""The wallboard in a real headless Chromium (Debian's package): after callers are left
waiting in a queue, the page shows the right numbers; its screenshot lands in the test's tmp
dir (wallboard.png)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from acd.store import QueueView
from tests.integration.cluster import Cluster
from tests.integration.queue_scene import (
    ANSWERED_QUEUE,
    WAIT_QUEUE,
    api_process,
    scene,
)

pytestmark = pytest.mark.slow

# Virtual time the page runs for: its first fetch and a few one-second redraws.
VIRTUAL_TIME_MS = 3500


class Figures(HTMLParser):
    """``{queue: {field: text}}`` from the page's DOM (data-queue sections, data-field
    figures, their .v value), plus the status line and the agents' chips."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: dict[str, dict[str, str]] = {}
        self.chips: dict[str, list[str]] = {}
        self.status = ""
        self._queue = ""
        self._field = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-queue"):
            self._queue = a["data-queue"] or ""
            self.queues[self._queue] = {}
            self.chips[self._queue] = []
        if a.get("data-field"):
            self._field = a["data-field"] or ""
        if a.get("class") == "v":
            self._in = "value"
        elif a.get("id") == "status":
            self._in = "status"
        elif tag == "span" and ("data-state" in a or "data-status" in a):
            self._in = "chip"

    def handle_data(self, data: str) -> None:
        if self._in == "value":
            self.queues[self._queue][self._field] = data
        elif self._in == "status":
            self.status += data
        elif self._in == "chip":
            self.chips[self._queue].append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run `make deps` (Debian's chromium package)")
    res = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1920,1080",
         f"--virtual-time-budget={VIRTUAL_TIME_MS}", *args, url],
        capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_wallboard_in_chromium_shows_the_callers_waiting_and_the_answered_call(
        cluster: Cluster, redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with scene(cluster, monkeypatch) as s, api_process(redis_url, tmp_path) as api:
        s.answer_one()
        s.leave_waiting(3)
        page = f"{api.url}/wallboard#token={api.token}"

        def longest() -> int:
            status, body = api.get("/v1/tenants/acdtest/wallboard")
            assert status == 200, body
            return {q["queue"]: q for q in body["queues"]}[WAIT_QUEUE]["longest_wait_s"]

        before = longest()
        dom = Figures()
        dom.feed(chromium(tmp_path, page, "--dump-dom"))
        after = longest()
        assert dom.status.startswith("updated"), dom.status
        waiting = dom.queues[WAIT_QUEUE]
        assert waiting["waiting"] == "3", waiting
        assert waiting["logged_in"] == "0" and waiting["answered"] == "0", waiting
        # The first caller's wait as the server read it while the page was open (m:ss).
        minutes, seconds = waiting["longest_wait"].split(":")
        assert before <= int(minutes) * 60 + int(seconds) <= after, (before, waiting, after)
        assert dom.chips[WAIT_QUEUE] == ["logged out 1"]
        answered = dom.queues[ANSWERED_QUEUE]
        assert answered["answered"] == "1" and answered["waiting"] == "0", answered
        assert answered["logged_in"] == "2", answered
        # Answered within the threshold (the agent picked up at once): 100 % once the ACD
        # counts answers within it (the KPI work), "-" (never a made-up figure) before.
        counts_sl = "answered_in_sl_today" in QueueView.__dataclass_fields__
        assert answered["service_level"] == ("100%" if counts_sl else "-"), answered
        assert waiting["service_level"] == "-", waiting       # nothing answered or lost yet

        shot = tmp_path / "wallboard.png"
        chromium(tmp_path, page, f"--screenshot={shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_wallboard_without_a_token_says_how_to_get_one(cluster: Cluster, redis_url: str,
                                                        tmp_path: Path) -> None:
    with api_process(redis_url, tmp_path) as api:
        dom = Figures()
        dom.feed(chromium(tmp_path, f"{api.url}/wallboard", "--dump-dom"))
        assert "token" in dom.status and not dom.queues
        bad = Figures()
        bad.feed(chromium(tmp_path, f"{api.url}/wallboard#token=cct.acdtest.nope",
                          "--dump-dom"))
        assert bad.status.startswith("401"), bad.status
