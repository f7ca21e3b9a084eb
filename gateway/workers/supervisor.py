"""The supervisor of `tillgate serve --workers N` (docs/scaling.md, "Workers").

It starts the embedded redis-server once (when the config names no Redis URL: the workers find
it through the data directory's lock, as any second process does) and N workers, each
`tillgate serve --worker I/N`, a full gateway listening on the same ports with SO_REUSEPORT
(gateway/listeners/reuseport.py). A worker says it is ready with one line on its stdout.

- A worker that exits before it was ready the first time fails the whole start: the others are
  stopped and the supervisor exits 1 (a bad config or a port in use fails once, in the worker's
  own words on stderr, rather than in a restart loop).
- A worker that exits later is started again after a back-off that doubles from 0.1 s up to
  30 s while restarts keep failing (and starts from 0.1 s once a worker stayed up a minute),
  with a log line and tillgate_worker_restarts_total.
- SIGTERM or SIGINT: every worker gets SIGTERM, drains and stops; once all have exited the
  embedded server is stopped and the supervisor exits (0 if every worker stopped cleanly).
- SIGHUP goes to every worker: each reloads the config file (gateway/reloader.py).
- The supervisor's pid is in `<data_dir>/tillgate.pid` once all workers are ready, so
  `tillgate config reload` signals it. A worker gets SIGTERM if the supervisor dies (prctl).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from gateway import runfiles
from gateway.config.model import Config
from gateway.embedded_redis import EmbeddedRedis, die_with_parent
from gateway.metrics import families as metrics
from gateway.metrics import multiproc
from gateway.security.alerts.service import Backoff
from gateway.supervise import EmbeddedSupervisor, describe_exit

log = logging.getLogger("tillgate.workers")

READY_LINE = b"tillgate worker ready\n"
STABLE_AFTER = 60.0  # a worker up this long starts its restart back-off again from the first
STOP_MARGIN = 30.0  # past shutdown_grace and the stop budget: then a worker is killed


class CannotStart(RuntimeError):
    """A worker exited before it was ready the first time; the message says which and how."""


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(0.1, 30.0))
    restarts: int = 0
    up_since: float = 0.0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


class Supervisor:
    """`command`: the worker's command line without `--worker I/N`."""

    def __init__(self, config: Config, count: int, command: list[str],
                 metric_files: multiproc.HotFiles | None = None):
        self.config = config
        self.metric_files = metric_files  # where this process's counters are summed from
        self.count = count
        self.command = command
        self.workers = [Worker(i) for i in range(count)]
        self.stopping = False
        self.embedded: EmbeddedRedis | None = None
        self.embedded_supervisor: EmbeddedSupervisor | None = None
        self._ping_client: Any = None  # the embedded server's PING, for its supervisor
        self._watchers: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.clean = True  # every worker stopped with status 0

    async def run(self, reactor) -> None:
        """Start everything, supervise until stopped; CannotStart if a worker cannot start."""
        self._copy_counters()  # at 0 from the start, as a single gateway's are
        if self.config.redis.url is None:
            await self._start_embedded(reactor)
        try:
            first = [asyncio.ensure_future(self._spawn(w)) for w in self.workers]
            results = await asyncio.gather(*first, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            self._watchers = [asyncio.ensure_future(self._watch(w)) for w in self.workers]
            try:
                runfiles.write_pid(self.config.data_dir)
            except OSError as e:
                log.warning("cannot write %s: %s (kill -HUP still reloads)",
                            self.config.data_dir / runfiles.PID_FILE, e.strerror)
            log.info("tillgate ready: %d workers (pids %s) on the same ports", self.count,
                     ", ".join(str(w.pid) for w in self.workers))
            await self._stopped.wait()
        finally:
            await self._stop_workers()
            await self._stop_embedded()
            runfiles.remove_pid(self.config.data_dir)

    async def _start_embedded(self, reactor) -> None:
        from redis.asyncio import Redis

        from gateway.ledger.storeconnect import embedded_for

        embedded = embedded_for(self.config, role="gateway")
        embedded.start()  # blocking, before any worker: DataDirBusy if another gateway runs
        self.embedded = embedded
        client = Redis.from_url(embedded.url)
        self._ping_client = client
        log.info("embedded redis-server on %s (data in %s), shared by the workers",
                 embedded.socket_path, embedded.directory)

        async def ping() -> bool:
            try:
                return bool(await client.ping())
            except Exception:
                return False

        self.embedded_supervisor = EmbeddedSupervisor(
            reactor, embedded, ping, on_down=lambda why: None, on_restarted=self._restarted)
        self.embedded_supervisor.start()

    async def _stop_embedded(self) -> None:
        if self.embedded_supervisor is not None:
            await self.embedded_supervisor.stop()
        if self._ping_client is not None:
            await self._ping_client.aclose()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None

    async def _spawn(self, worker: Worker, first: bool = True) -> None:
        """Start the worker and wait for its ready line; CannotStart if it exits first."""
        process = worker.process = await asyncio.create_subprocess_exec(
            *self.command, "--worker", f"{worker.index}/{self.count}",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent)
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if line == READY_LINE:
                break
            if not line:  # its stdout closed: it exited (or is exiting) before it was ready
                code = await process.wait()
                raise CannotStart(f"worker {worker.index} (pid {process.pid}) could not start: "
                                  f"it {describe_exit(code)} (its own lines above say why)")
            sys.stdout.buffer.write(line)  # a worker's own output goes on
        worker.up_since = time.monotonic()
        asyncio.ensure_future(_copy(process.stdout))
        log.log(logging.DEBUG if first else logging.WARNING, "worker %d ready (pid %d)",
                worker.index, process.pid)

    async def _watch(self, worker: Worker) -> None:
        """Wait for the worker to exit; unless stopping, start it again after its back-off."""
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            pid = worker.process.pid
            multiproc_dir = multiproc.directory()
            if multiproc_dir is not None:
                multiproc.process_gone(pid, multiproc_dir)
            if self.stopping:
                if code != 0:
                    log.error("worker %d (pid %d) %s while stopping", worker.index, pid,
                              describe_exit(code))
                    self.clean = False
                return
            if time.monotonic() - worker.up_since >= STABLE_AFTER:
                worker.backoff.succeeded()
            delay = worker.backoff.failed()
            worker.restarts += 1
            metrics.WORKER_RESTARTS.inc()
            self._copy_counters()
            log.error("worker %d (pid %d) %s; restarting it in %.1f s (restart %d)",
                      worker.index, pid, describe_exit(code), delay, worker.restarts)
            await asyncio.sleep(delay)
            while not self.stopping:
                try:
                    await self._spawn(worker, first=False)
                    break
                except (CannotStart, OSError) as e:
                    delay = worker.backoff.failed()
                    log.error("%s; trying again in %.1f s", e, delay)
                    await asyncio.sleep(delay)
            if self.stopping:
                if worker.process is not None and worker.process.returncode is None:
                    continue  # the stop signalled it: wait for its exit above
                return

    async def _restarted(self, restarts: int, why: str) -> None:
        log.warning("%s; the workers reconnect to it (restart %d)", why, restarts)
        self._copy_counters()

    def _copy_counters(self) -> None:
        if self.metric_files is not None:
            self.metric_files.copy_counters([metrics.WORKER_RESTARTS,
                                             metrics.EMBEDDED_REDIS_RESTARTS])

    def stop(self) -> None:
        """SIGTERM/SIGINT: stop every worker, then the rest (`run` returns)."""
        self.stopping = True
        self._stopped.set()

    def reload(self) -> None:
        """SIGHUP: every running worker reloads its config."""
        pids = [w.process.pid for w in self.workers
                if w.process is not None and w.process.returncode is None]
        log.info("SIGHUP: asking workers %s to reload the config",
                 ", ".join(map(str, pids)) or "(none running)")
        for pid in pids:
            _signal(pid, signal.SIGHUP)

    async def _stop_workers(self) -> None:
        self.stopping = True
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                _signal(worker.process.pid, signal.SIGTERM)
        bound = self.config.shutdown_grace + STOP_MARGIN
        running = [w.process for w in self.workers if w.process is not None]
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=bound)
            if late:
                log.error("%d workers did not stop within %.0f s: killed", len(late), bound)
                self.clean = False
                for process in running:
                    if process.returncode is None:
                        _signal(process.pid, signal.SIGKILL)
                await asyncio.wait(waits)
        for process in running:
            if process.returncode not in (0, None) and not self._watchers:
                self.clean = False
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)




async def _copy(stream: asyncio.StreamReader) -> None:
    """Pass a worker's stdout on once its ready line is read (a full pipe would block it)."""
    while line := await stream.readline():
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # exited meanwhile: its watcher sees it
        pass
