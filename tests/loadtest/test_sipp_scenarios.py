"""The SIPp scenarios of loadtest/sipp/ against their counterparts on loopback: each caller and
agent-phone scenario completes its calls against a SIPp instance playing the switch's side of
the same flow (loadtest/sipp/peers/), so the XML is valid and both sides agree on every
message. Both processes must end with SIPp's success exit code (0: every call succeeded)."""

from __future__ import annotations

import random
import socket
import subprocess
from pathlib import Path

import pytest

from loadtest.callers import Caller, write
from loadtest.driver import agent_row

SIPP = Path(__file__).resolve().parents[2] / "loadtest" / "sipp"
CALLS = 3
TIMEOUT_S = 40

# (scenario under test, the peer playing the other side, the side that starts the calls)
PAIRS = [
    ("caller_ivr_2833.xml", "peers/switch_ivr_uas.xml", "caller"),
    ("caller_ivr_info.xml", "peers/switch_ivr_uas.xml", "caller"),
    ("caller_abandon_ivr.xml", "peers/switch_ivr_uas.xml", "caller"),
    ("caller_abandon_queue.xml", "peers/switch_ivr_uas.xml", "caller"),
    ("caller_wait_bye.xml", "peers/switch_greeting_uas.xml", "caller"),
    ("caller_blacklisted.xml", "peers/switch_reject_uas.xml", "caller"),
    ("agent_register.xml", "peers/switch_registrar_uas.xml", "caller"),
    ("agent_answer.xml", "peers/switch_calls_agent_uac.xml", "peer"),
    ("agent_busy.xml", "peers/switch_calls_busy_agent_uac.xml", "peer"),
    ("agent_noanswer.xml", "peers/switch_calls_absent_agent_uac.xml", "peer"),
]


def _ports(n: int, span: int = 4) -> list[int]:
    """n blocks of ``span`` consecutive UDP ports free on loopback, distinct from each other
    (held while choosing: two picks can never return the same port, as two free_port() calls
    can). SIPp binds SIP, control and media (the port and the ones after it) over UDP."""
    chosen: list[int] = []
    held: list[socket.socket] = []
    rng = random.Random()
    try:
        while len(chosen) < n:
            base = rng.randrange(20000, 60000 - span)
            block = []
            try:
                for p in range(base, base + span):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    block.append(sock)
                    sock.bind(("127.0.0.1", p))
            except OSError:
                for sock in block:
                    sock.close()
                continue
            held += block
            chosen.append(base)
    finally:
        for sock in held:
            sock.close()
    return chosen


def _sipp(scenario: str, port: int, media: int, control: int, *extra: str) -> list[str]:
    # Loopback only: SIP (-i), media (-mi), control (-ci), each instance on its own ports.
    return ["sipp", "-sf", str(SIPP / scenario), "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-ci", "127.0.0.1", "-cp", str(control),
            "-p", str(port), "-mp", str(media), "-m", str(CALLS), "-nostdin",
            "-timeout", f"{TIMEOUT_S}s", "-trace_err", *extra]


@pytest.mark.parametrize(("scenario", "peer", "starts"), PAIRS,
                         ids=[p[0].removesuffix(".xml") for p in PAIRS])
def test_the_scenario_completes_its_calls_against_its_peer(
        scenario: str, peer: str, starts: str, tmp_path: Path) -> None:
    callers = write([Caller("13311112222", "1", "plain"), Caller("13922223333", "2", "vip")],
                    tmp_path / "callers.csv")
    agents = tmp_path / "agents.csv"
    agents.write_text("SEQUENTIAL\n" + agent_row("1001", "secret1", 5099) + "\n"
                      + agent_row("1002", "secret2", 5098) + "\n", encoding="ascii")
    server_port, client_port, m1, m2, c1, c2 = _ports(6)
    uac, uas = (scenario, peer) if starts == "caller" else (peer, scenario)
    inf = (["-inf", str(agents)] if scenario == "agent_register.xml"
           else ["-inf", str(callers)] if scenario.startswith("caller") else [])
    # The registrar checks each digest answer against the same agents' credentials.
    server_inf = ["-inf", str(agents)] if scenario == "agent_register.xml" else []
    server = subprocess.Popen(
        _sipp(uas, server_port, m1, c1, *server_inf, "-error_file",
              str(tmp_path / "server.err")),
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        client = subprocess.run(
            _sipp(uac, client_port, m2, c2, *inf, "-d", "300", "-r", "5",
                  "-error_file", str(tmp_path / "client.err"),
                  "-s", "4008001234", f"127.0.0.1:{server_port}"),
            capture_output=True, timeout=TIMEOUT_S + 10, cwd=tmp_path)
        server_rc = server.wait(timeout=TIMEOUT_S + 10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    errors = "".join((tmp_path / f).read_text(errors="replace") for f in ("client.err",
                                                                          "server.err")
                     if (tmp_path / f).exists())
    assert (client.returncode, server_rc) == (0, 0), errors[-3000:]
