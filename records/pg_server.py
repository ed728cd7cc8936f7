"""A private PostgreSQL server for tests and bench: Debian's ``postgresql`` binaries (``make
deps`` installs them, never starting the packaged service), ``initdb`` + ``pg_ctl`` in a
temporary directory, listening on a free loopback port with its unix socket in that directory.

PostgreSQL refuses to run as root, and CI runs as root: then the server's commands run as
``nobody`` (the data directory is handed to it); as any other user they run as that user.
Authentication is ``trust``, acceptable only because it listens on 127.0.0.1 and a socket in a
directory only its user can enter.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cc_core.errors import EnvironmentProblem
from cc_core.redis_server import free_port

START_TIMEOUT_S = 30.0
SUPERUSER = "cc"
UNPRIVILEGED = "nobody"


def server_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's server binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    host: str = "127.0.0.1"
    port: int = 0
    workdir: str = ""
    bindir: Path | None = None
    _user: str | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def _run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), user=self._user, capture_output=True, text=True,
                              check=False, **kw)

    def start(self) -> PrivatePostgres:
        self.bindir = server_bin_dir()
        if self.bindir is None:
            raise EnvironmentProblem(
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/pg_ctl): run "
                "`make deps` (installs Debian's postgresql package without starting it)")
        self.workdir = tempfile.mkdtemp(prefix="cc-core-pg-")
        if os.geteuid() == 0:
            self._user = UNPRIVILEGED
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        data = os.path.join(self.workdir, "data")
        init = self._run(str(self.bindir / "initdb"), "-D", data, "-U", SUPERUSER,
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
                         cwd=self.workdir)
        if init.returncode != 0:
            raise EnvironmentProblem(f"initdb failed in {self.workdir}: {init.stderr.strip()}")
        last = ""
        for _ in range(5):
            self.port = self.port or free_port(self.host)
            options = (f"-c listen_addresses={self.host} -c port={self.port} "
                       f"-c unix_socket_directories={self.workdir} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            started = self._run(str(self.bindir / "pg_ctl"), "-D", data, "-l",
                                os.path.join(self.workdir, "server.log"), "-o", options,
                                "-w", "-t", str(int(START_TIMEOUT_S)), "start",
                                cwd=self.workdir)
            if started.returncode == 0:
                return self
            last = started.stderr.strip() or self._log_tail()
            self.port = 0   # taken meanwhile: another free port
            time.sleep(0.1)
        self.stop()
        raise EnvironmentProblem(f"PostgreSQL did not start in {self.workdir}: {last}")

    def _log_tail(self) -> str:
        try:
            return Path(self.workdir, "server.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.bindir is not None and self.workdir and os.path.isdir(
                os.path.join(self.workdir, "data")):
            self._run(str(self.bindir / "pg_ctl"), "-D", os.path.join(self.workdir, "data"),
                      "-m", "immediate", "-w", "stop", cwd=self.workdir)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def create_database(self, name: str) -> str:
        """A new empty database; its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
