"""The simulator as a child process: ``python -m fssim --listen 127.0.0.1:0 …``, its port read
from the ``listening on HOST:PORT`` line it prints first. Shared by the demo, the benchmarks
and the tests, so that each does not grow its own start-up and shut-down dance."""

from __future__ import annotations

import re
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"listening on (\S+):(\d+)\n")


@dataclass
class SimProcess:
    host: str
    port: int
    password: str
    proc: subprocess.Popen[str]
    first_line: str
    stderr_path: Path | None

    @classmethod
    def start(cls, *args: str, password: str = "ClueCon", stderr_path: Path | None = None,
              listen: str = "127.0.0.1:0", cwd: str | Path | None = None) -> SimProcess:
        """Start the simulator with ``args`` (CLI flags) and wait for its listening line;
        RuntimeError, with its stderr tail, if it does not print one in time."""
        err = stderr_path.open("w") if stderr_path is not None else subprocess.DEVNULL
        cmd = [sys.executable, "-m", "fssim", "--listen", listen, "--password", password, *args]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=cwd)
        finally:
            if stderr_path is not None:
                err.close()  # type: ignore[union-attr]
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        m = _LISTENING.fullmatch(line)
        sim = cls(m.group(1) if m else "", int(m.group(2)) if m else 0, password, proc, line,
                  stderr_path)
        if not m:
            sim.stop()
            raise RuntimeError(f"the simulator did not print 'listening on HOST:PORT' first; "
                               f"got {line!r}; stderr: {sim.stderr()[-2000:]}")
        return sim

    def stderr(self) -> str:
        if self.stderr_path is None:
            return "(not kept)"
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(unreadable)"

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
