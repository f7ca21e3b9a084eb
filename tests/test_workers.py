"""`tillgate serve --workers 2` as a real subprocess: one supervisor, two gateway processes on
the same ports (SO_REUSEPORT), one embedded redis-server, one `/metrics` for both.

The tests share one running gateway (a start takes seconds) and run in file order: connections
spread over both workers, a SIGHUP reloads both, a worker killed with SIGKILL is restarted while
the port keeps answering, SIGTERM stops everything. A start that a worker cannot make fails once.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from gateway.sim.isoclient import IsoClient
from gateway.testing import GatewayProcess
from protocols.isobuild import transmission_time

WAIT = 30.0


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--worker\x00" in f.read()
    except OSError:
        return False


def worker_pids(gateway: GatewayProcess) -> list[int]:
    assert gateway.process is not None
    return sorted(p for p in _children(gateway.process.pid) if _is_worker(p))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def wait_for(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN on 127.0.0.1:port, from the kernel's own table."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == "0A")


def echo(client: IsoClient, stan: int) -> dict[str, str]:
    return client.exchange({"t": "0800", "7": transmission_time(), "11": f"{stan:06d}",
                            "41": "TILL0001", "42": "STORE0000000001", "70": "301"})


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"(?m)^" + pattern + "$", text)
    return None if found is None else float(found.group(1))


def scrape(gateway: GatewayProcess) -> str:
    status, body = gateway.http_get("/metrics")
    assert status == 200
    return body.decode()


def accepted_by(gateway: GatewayProcess, pid: int) -> int:
    """Connections the worker `pid` accepted: its own multiprocess file, not the sum."""
    path = gateway.workdir / "var" / "metrics" / f"counter_{pid}.db"
    if not path.exists():
        return 0
    return int(sum(value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
                   if '"tillgate_accepted_connections_total"' in key))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gateway = GatewayProcess.prepare(tmp_path_factory.mktemp("workers"))
    gateway.workers = 2
    try:
        gateway.start(timeout=60)  # healthy: one worker answers /healthz
        wait_for(lambda: "tillgate ready: 2 workers" in gateway.log, "both workers ready", 60)
        yield gateway
    finally:  # the last test stopped it; a failure before that leaves it to be killed here
        gateway.stop(signal.SIGKILL)


def test_connections_spread_over_both_workers_and_metrics_sum_both(gateway):
    before = metric(scrape(gateway), "tillgate_messages_in_total", listener="iso",
                    mti="0800") or 0.0
    clients = [IsoClient("127.0.0.1", gateway.ports["iso"], timeout=10) for _ in range(40)]
    try:
        for stan, client in enumerate(clients, 1):
            reply = echo(client, stan)
            assert reply["t"] == "0810" and reply["39"] == "00", reply
    finally:
        for client in clients:
            client.close()
    pids = worker_pids(gateway)
    per_worker = {pid: accepted_by(gateway, pid) for pid in pids}
    assert sum(per_worker.values()) == 40, per_worker
    assert all(count > 0 for count in per_worker.values()), f"one worker took all: {per_worker}"
    # The hot counters reach the files within a second; the scrape sums both workers.
    wait_for(lambda: metric(scrape(gateway), "tillgate_messages_in_total", listener="iso",
                            mti="0800") == before + 40, "/metrics counts all 40 echoes")
    text = scrape(gateway)
    assert metric(text, "tillgate_accepted_connections_total", listener="iso") == 40
    assert metric(text, "tillgate_worker_restarts_total") == 0.0  # the supervisor's, from 0
    for pid in pids:  # a live gauge per worker: both are in the one scrape
        assert metric(text, "tillgate_config_generation", pid=str(pid)) == 1.0


def test_sighup_reloads_every_worker(gateway):
    pids = worker_pids(gateway)
    gateway.process.send_signal(signal.SIGHUP)
    wait_for(lambda: all(metric(scrape(gateway), "tillgate_config_generation", pid=str(pid))
                         == 2.0 for pid in pids), "both workers at config generation 2")
    assert gateway.log.count("config reload (SIGHUP) applied") == 2, gateway.log[-3000:]


def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(gateway):
    victim, survivor = worker_pids(gateway)
    gateway_log = gateway.log
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in worker_pids(gateway), "the supervisor reaped it")
    # The kernel closes a killed process's files a moment after its exit (a deferred fput):
    # until then a connection may still be queued on its socket, and is reset (a till
    # reconnects). From then on every new connection lands on the one still listening.
    wait_for(lambda: listening_sockets(gateway.ports["iso"]) == 1, "its socket closed")
    for stan in range(20):
        with IsoClient("127.0.0.1", gateway.ports["iso"], timeout=10) as client:
            assert echo(client, 100 + stan)["39"] == "00"
    replaced = wait_for(lambda: [p for p in worker_pids(gateway) if p not in (victim, survivor)],
                        "a new worker")
    assert survivor in worker_pids(gateway)
    wait_for(lambda: f"ready (pid {replaced[0]})" in gateway.log, "the new worker ready", 60)
    new_lines = gateway.log[len(gateway_log):]
    assert f"(pid {victim}) was killed by SIGKILL; restarting it" in new_lines, new_lines
    wait_for(lambda: metric(scrape(gateway), "tillgate_worker_restarts_total") == 1.0,
             "the restart counted in /metrics")
    # The new worker serves too: connections until one lands on it (the kernel's hash).
    accepted = accepted_by(gateway, replaced[0])
    stan = 200
    while accepted_by(gateway, replaced[0]) == accepted and stan < 400:
        with IsoClient("127.0.0.1", gateway.ports["iso"], timeout=10) as client:
            assert echo(client, stan)["39"] == "00"
        stan += 1
    assert accepted_by(gateway, replaced[0]) > accepted


def test_sigterm_stops_every_worker_and_redis_cleanly(gateway):
    pids = worker_pids(gateway)
    redis_pid = int((gateway.workdir / "var" / "redis" / "redis.pid").read_text())
    assert gateway.stop(signal.SIGTERM) == 0, gateway.log[-3000:]
    for pid in [*pids, redis_pid]:
        wait_for(lambda pid=pid: not _alive(pid), f"pid {pid} gone")
    assert gateway.log.count("tillgate stopped") >= 3  # each worker, then the supervisor
    assert not (gateway.workdir / "var" / "tillgate.pid").exists()


def test_a_worker_that_cannot_start_fails_the_start_once(tmp_path):
    gateway = GatewayProcess.prepare(tmp_path)
    gateway.workers = 2
    # The ISO port taken by a socket without SO_REUSEPORT: no worker can bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", gateway.ports["iso"]))
        taken.listen()
        gateway.start(wait=False)
        try:
            code = gateway.process.wait(120)  # two workers start first: slow on a busy machine
        finally:
            gateway.stop(signal.SIGKILL)
    assert code == 1, gateway.log
    assert "tillgate: cannot start: worker" in gateway.log
    assert "could not start" in gateway.log and "restarting" not in gateway.log, gateway.log
    assert Path(tmp_path / "var" / "tillgate.pid").exists() is False
