"""`cc-core loadtest --target sipp`: its SIPp command lines are those the README documents, each
bound to loopback, bounded in calls and time (the sim target: tests/integration)."""

from __future__ import annotations

import shlex
import subprocess
import sys

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
