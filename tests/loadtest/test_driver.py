"""`cc-core loadtest --target sipp`: its SIPp command lines are those the README documents, each
bound to loopback, bounded in calls and time (the sim target: tests/integration)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from loadtest import driver
from tests.integration.cluster import REPO

README_CMD = ("cc-core loadtest --target sipp --switch 127.0.0.1:5060 --calls 100 --agents 2 "
              "--rate 5 --workdir /tmp/cc-loadtest --print-commands")


def _cc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cc_core.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def _readme_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"    $ {README_CMD}\n")
    lines = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("    sipp "):
            break
        lines.append(line.strip())
    return lines


def test_the_sipp_command_lines_are_the_readme_s_and_stay_on_loopback() -> None:
    res = _cc(*shlex.split(README_CMD)[1:])
    assert res.returncode == 0, res.stderr
    printed = [ln.replace(str(REPO) + "/", "") for ln in res.stdout.splitlines()]
    assert printed == _readme_block(), "update the README's block from --print-commands"
    ports = []
    for line in printed:
        argv = shlex.split(line)
        assert (argv[argv.index("-i") + 1] == argv[argv.index("-mi") + 1]
                == argv[argv.index("-ci") + 1] == "127.0.0.1")
        assert "-m" in argv and "-timeout" in argv, line
        ports += [argv[argv.index(flag) + 1] for flag in ("-p", "-mp", "-cp")]
    assert len(ports) == len(set(ports)), "every SIPp process on ports of its own"
    assert sum(1 for ln in printed if "agent_answer.xml" in ln) == 2
    assert any("caller_blacklisted.xml" in ln for ln in printed)


def test_an_agent_line_carries_its_credentials_as_the_authentication_keyword() -> None:
    # SIPp does not expand [field0] inside [authentication ...]: the line holds it whole.
    assert driver.agent_row("1001", "s3cret!", 15100) == (
        "1001;s3cret!;15100;[authentication username=1001 password=s3cret!]")


@pytest.mark.parametrize("password", ["a;b", "a b", "a]b", "a=b", "", "密码"])
def test_a_password_sipp_cannot_carry_is_refused_saying_which_characters(password: str) -> None:
    with pytest.raises(driver.BadAgentCredential, match="agent '1001': its password"):
        driver.agent_row("1001", password, 15100)


def test_no_two_sipp_processes_of_a_run_share_a_port() -> None:
    # SIPp binds audio RTP on -mp and video RTP on -mp + 2 (and the RTCP port after each) and
    # exits when one is taken: on the lab switch every agent phone died that way, and no
    # call ever reached an agent.
    plan = driver.SippPlan(switch="127.0.0.1:5060", agents_switch="127.0.0.1:5070",
                           dnis="4008001234", rate=5, calls=100, agents=12)
    owners: dict[int, str] = {}     # every one a UDP port on 127.0.0.1
    for name, argv in driver.sipp_commands(plan):
        opts = dict(zip(argv, argv[1:], strict=False))
        media = int(opts["-mp"])
        taken = [int(opts["-p"]), int(opts["-cp"]), *range(media, media + 4)]
        for port in taken:
            assert port not in owners, f"{name} and {owners[port]} both bind {port}"
            owners[port] = name
