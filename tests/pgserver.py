"""A real PostgreSQL for the test session: Debian's `postgresql` package, started on a free
loopback port in a temporary data directory, and one fresh database per test.

PostgreSQL refuses to run as root; as root (CI, containers) the server runs as the `postgres`
user the Debian package creates (else `nobody`), in a directory given to that user.

Where no PostgreSQL is installed the tests that need it skip with the reason, unless
TILLGATE_REQUIRE_POSTGRES=1 (set by .ci/run, which installs it) turns that into a failure, so
CI can never pass by skipping them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gateway.embedded_redis import free_port

USER = "tillgate"  # the database superuser initdb creates; trust authentication on loopback


class PostgresUnavailable(Exception):
    pass


def find_bindir() -> Path:
    """The directory of initdb and pg_ctl: on PATH (if it is a real install), else Debian's."""
    for candidate in [shutil.which("pg_ctl"), *sorted(glob.glob(
            "/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)]:
        if candidate:
            bindir = Path(os.path.realpath(candidate)).parent
            if (bindir / "initdb").exists() and (bindir / "postgres").exists():
                return bindir
    raise PostgresUnavailable("no PostgreSQL server installed (Debian: apt-get install "
                              "postgresql; .ci/run does)")


class PostgresServer:
    def __init__(self):
        self.bindir = find_bindir()
        # Not under pytest's tmp_path: that is private to root, and the server may run as
        # another user, who must reach its own directory.
        self.base = Path(tempfile.mkdtemp(prefix="tillgate-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self._databases = 0

    def _run(self, *argv: str, **kwargs) -> subprocess.CompletedProcess:
        user = self._run_as
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True,
                              user=user.pw_uid if user else None,
                              group=user.pw_gid if user else None, **kwargs)

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            os.chown(self.base, self._run_as.pw_uid, self._run_as.pw_gid)
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                      "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
            # fsync off: a test database need not survive a power cut, and it makes each
            # CREATE DATABASE and commit cheap.
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                      "-l", str(self.base / "server.log"), "-o",
                      f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
                      "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                      "start")
        except subprocess.CalledProcessError as e:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{e.cmd[0]} failed: {e.stderr.strip()} {tail}") from e

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60,
                           user=self._run_as.pw_uid if self._run_as else None)
        shutil.rmtree(self.base, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; its URL (the gateway's form: no driver in the scheme)."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}_{int(time.time() * 1000) % 100000}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", USER, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                              capture_output=True, text=True, check=True, timeout=60).stdout


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no postgres or nobody user to run as")
