"""Record how a real FreeSWITCH reads originate variables: tests/data/originate_escaping.json.

For each hostile value and each variable block (``{}`` global, ``[]`` per leg, ``<>``
enterprise), send over inbound ESL

    bgapi originate {origination_uuid=<u>,...}<block>loopback/<400 number>/default &park()
    api uuid_getvar <u> cc_probe          (polled until the a-leg exists, 5 s at most)
    api uuid_kill <u>
    (the job's BACKGROUND_JOB body)

and keep every request and its exact reply. The loopback b-leg runs the lab dialplan, which
parks without answering, so the a-leg rings: a sync ``api originate`` would wait for the
answer; ``origination_uuid`` names the ringing a-leg instead. ``{}`` commands are built with
``esl_handlers.commands.originate`` (what the product sends); ``[]`` / ``<>`` put the value,
escaped with ``escape_originate_value``, into that block by hand (the builders do not make
them); a few ``raw`` rows send a value unescaped, to show why the escaping exists.

Run against a lab switch of your own (loopback only), never a production one:

    .venv/bin/python tools/capture_originate_escaping.py --port 8221 > tests/data/originate_escaping.json
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import uuid
from typing import Any

from esl_handlers.commands import escape_originate_value, originate

VAR = "cc_probe"
DIAL = "loopback/4005550177/default"

VALUES = [
    "John Doe",                 # a space: originate_function splits its argument on spaces
    "a,b,c",                    # ',': the {...} block is split on commas
    "O'Brien",                  # "'": a quote for every FreeSWITCH splitter
    "back\\slash",              # '\': the escape character of every splitter
    "k=v=w",                    # '=': each item is split on the first '='
    "\\s",                      # a literal backslash-s (the escape FreeSWITCH reads as space)
    "  two  spaces  ",          # leading, trailing and double spaces
    "a b,c'd\\e=f",             # all of them together
    "d%20e+f",                  # URL-looking text stays as is
    "\u5f20\u4e09 \u674e\u56db",  # UTF-8 (a Chinese caller name with a space)
    "x|y",                      # '|': failover between dial strings outside a block
    "x:_:y",                    # ':_:': enterprise originate separator outside a block
    "a[b]c",                    # per-leg block brackets
    "a<b>c",                    # enterprise block brackets
    "&park()",                  # the application part of the command
    "^^;x;y",                   # '^^<c>': FreeSWITCH's custom-delimiter prefix
]
RAW_VALUES = ["John Doe", "a,b,c", "O'Brien"]


class Esl:
    """A minimal inbound ESL client: exact bodies, a deadline on every read."""

    def __init__(self, host: str, port: int, password: str, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.jobs: dict[str, str] = {}   # Job-UUID -> BACKGROUND_JOB body
        assert self._frame()[0].get("Content-Type") == "auth/request"
        head, _ = self.command(f"auth {password}")
        if head.get("Reply-Text") != "+OK accepted":
            raise SystemExit(f"auth failed: {head}")

    def _frame(self) -> tuple[dict[str, str], bytes]:
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("switch closed the connection")
            self.buf += chunk
        block, self.buf = self.buf.split(b"\n\n", 1)
        head = dict(line.split(": ", 1) for line in block.decode().split("\n"))
        length = int(head.get("Content-Length", "0"))
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("switch closed the connection")
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return head, body

    def _next(self) -> tuple[dict[str, str], bytes]:
        """The next reply; events read on the way are kept (BACKGROUND_JOB bodies)."""
        while True:
            head, body = self._frame()
            if head.get("Content-Type") != "text/event-plain":
                return head, body
            block, _, rest = body.partition(b"\n\n")
            ev = dict(line.split(": ", 1) for line in block.decode().split("\n"))
            if ev.get("Event-Name") == "BACKGROUND_JOB":
                self.jobs[ev["Job-UUID"]] = rest[:int(ev.get("Content-Length", "0"))].decode()

    def command(self, text: str) -> tuple[dict[str, str], bytes]:
        self.sock.sendall(text.encode() + b"\n\n")
        return self._next()

    def wait_job(self, job: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while job not in self.jobs:
            if time.monotonic() > deadline:
                return "(no BACKGROUND_JOB within the deadline)"
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                head, body = self._next()
            except TimeoutError:
                continue
            raise AssertionError(f"unexpected reply {head}")
        return self.jobs[job]

    def api(self, text: str) -> str:
        head, body = self.command(f"api {text}")
        assert head.get("Content-Type") == "api/response", head
        return body.decode("utf-8", "surrogateescape")


def commands_for(value: str, uid: str) -> list[tuple[str, dict[str, str] | None, str]]:
    """(block kind, builder variables or None, originate text without 'bgapi ')."""
    variables = {"origination_uuid": uid, VAR: value}
    out: list[tuple[str, dict[str, str] | None, str]] = [
        ("{}", variables, originate(DIAL, variables=variables))]
    try:
        escaped = escape_originate_value(value)
    except ValueError:
        return out
    head = f"originate {{origination_uuid={uid}}}"
    out.append(("[]", None, f"{head}[{VAR}={escaped}]{DIAL} &park()"))
    out.append(("<>", None, f"originate <origination_uuid={uid},{VAR}={escaped}>{DIAL} &park()"))
    return out


def run(esl: Esl) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    head, _ = esl.command("event plain BACKGROUND_JOB")
    assert head.get("Reply-Text", "").startswith("+OK"), head
    for value, how in [(v, "builder") for v in VALUES] + [(v, "raw") for v in RAW_VALUES]:
        for index in range(3):
            uid = str(uuid.uuid4())
            cases = commands_for(value, uid)
            if how == "raw":
                cases = [("{}", None,
                          f"originate {{origination_uuid={uid},{VAR}={value}}}{DIAL} &park()")]
            if index >= len(cases):
                break
            kind, variables, cmd = cases[index]
            row: dict[str, Any] = {"value": value, "block": kind, "escaping": how,
                                   "builder_variables": variables, "uuid": uid,
                                   "exchanges": []}
            head, _ = esl.command(f"bgapi {cmd}")
            reply = head.get("Reply-Text", "")
            row["exchanges"].append({"request": f"bgapi {cmd}", "reply_text": reply})
            job = head.get("Job-UUID", "")
            got = ""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and job not in esl.jobs:
                got = esl.api(f"uuid_getvar {uid} {VAR}")
                if got != "-ERR No such channel!\n":
                    break
                time.sleep(0.05)
            row["exchanges"].append({"request": f"api uuid_getvar {uid} {VAR}",
                                     "response": got})
            row["exchanges"].append({"request": f"api uuid_kill {uid}",
                                     "response": esl.api(f"uuid_kill {uid}")})
            row["background_job"] = esl.wait_job(job)
            rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8021)
    ap.add_argument("--password", default="ClueCon")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("loopback lab switches only")
    esl = Esl(args.host, args.port, args.password)
    version = esl.api("version").strip()
    modules = esl.api("module_exists mod_loopback").strip()
    rows = run(esl)
    json.dump({"switch": version, "mod_loopback": modules, "variable": VAR, "dial": DIAL,
               "recorded_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cases": rows}, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
