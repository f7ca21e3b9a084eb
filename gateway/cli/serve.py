"""`tillgate serve [--config FILE]`: run the daemon until SIGTERM or SIGINT.

Start-up problems (a config error, Redis not answering, a port in use) end the process with one
clear line on stderr and a non-zero status: 2 for a bad config, 1 for a failure to start.
SIGTERM/SIGINT stop accepting, finish in-flight work, close Redis and exit 0 (1 if a part had
to be cancelled at the shutdown bound, see gateway.services). SIGHUP reloads the config file
without dropping a connection (gateway/reloader.py; `tillgate config reload` sends it to the
pid in `<data_dir>/tillgate.pid`, written once ready). SIGUSR1 writes
every thread's Python stack to stderr (faulthandler) and carries on: the first look at a daemon
that seems stuck, with no debugger to attach.

`--workers N` (N > 1, Linux) runs N such gateways on the same ports under one supervisor
(gateway/workers/supervisor.py; docs/scaling.md, "Workers"). `--worker I/N` is how the
supervisor starts each one; not for people.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import logging
import os
import signal
import sys

from gateway import runfiles
from gateway.cli.config import load_or_report, summary
from gateway.config.defaults import DEFAULT_CONFIG_PATH

log = logging.getLogger("tillgate")


def register(subparsers, common) -> None:
    serve = subparsers.add_parser("serve", parents=[common], help="run the gateway daemon")
    serve.add_argument("--workers", type=_worker_count, default=1, metavar="N",
                       help="run N gateway processes on the same ports under one supervisor "
                       "(default 1: one process, no supervisor; N > 1 needs SO_REUSEPORT, "
                       "Linux)")
    serve.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=run)


def _worker_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of workers from 1 to 64, got {text!r}")
    return int(text)


def run(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    if getattr(args, "workers", 1) > 1:
        from gateway.workers.main import run_supervisor

        return run_supervisor(args, config)
    worker = None
    if getattr(args, "worker", None):
        from gateway.workers.role import WorkerRole

        try:
            worker = WorkerRole.parse(args.worker)
        except ValueError as e:
            print(f"tillgate: {e}", file=sys.stderr)
            return 2
    from gateway.reactor import install_asyncio_reactor, stop_on_signals
    from gateway.security.logmask import setup_logging

    setup_logging(config.log_level, programs=config.programs.values(),
                  process="" if worker is None else f"worker {worker.index}")
    if getattr(args, "config_builtin", False):
        log.info("no %s here: running the built-in default configuration (HOST-SPEC 6); "
                 "`tillgate config init FILE` writes it to a file to edit", DEFAULT_CONFIG_PATH)
    loop = install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from gateway.app import Gateway

    if worker is not None:
        from gateway.listeners.endpoints import share_ports

        share_ports()
    gateway = Gateway(reactor, config, worker)
    outcome = {"status": 0}

    async def start() -> None:
        try:
            await gateway.start()
        except Exception as e:  # one line for the operator; the traceback only at DEBUG
            log.debug("start failed", exc_info=True)
            print(f"tillgate: cannot start: {_one_line(e)}", file=sys.stderr)
            outcome["status"] = 1
            reactor.stop()
            return
        # What exists now (modules, config, services) lives as long as the process: keep it out
        # of the collector's full passes, which scanned it all again and again and showed up
        # as p99 latency under load. Requests free their objects by reference counting and the
        # collector only finds cycles, yet at the default thresholds it ran ~300 times a second
        # over the requests in flight: 5.5 % of the CPU at 256 outstanding, 0.4 % at these
        # (bench/bench_e2e.py; docs/benchmarks.md section 9).
        gc.freeze()
        gc.set_threshold(10_000, 50, 1_000)
        if worker is not None:  # the supervisor holds the pid file and waits for this line
            _worker_ready(reactor)
            log.info("tillgate worker %s ready (pid %d)", worker, os.getpid())
            return
        try:
            runfiles.write_pid(config.data_dir)
        except OSError as e:  # the gateway serves on; only `config reload` cannot find it
            log.warning("cannot write %s: %s (`tillgate config reload` will not find this "
                        "gateway; kill -HUP still reloads)", config.data_dir / runfiles.PID_FILE,
                        e.strerror)
        log.info("tillgate ready: %s; %s", summary(config), ", ".join(_endpoints(config)))

    reactor.callWhenRunning(lambda: ensureDeferred(start()))
    reactor.addSystemEventTrigger("before", "shutdown", runfiles.remove_pid, config.data_dir)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: ensureDeferred(gateway.stop()))
    stop_on_signals(loop, reactor.stop)
    # Before the reactor runs: SIGHUP's default action would end the process.
    loop.add_signal_handler(signal.SIGHUP, gateway.reload, "SIGHUP")
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # not in IReactorCore
    if outcome["status"] == 0 and gateway.tree.stuck:
        log.error("tillgate stopped, but not cleanly: %s had to be cancelled",
                  ", ".join(gateway.tree.stuck))
        outcome["status"] = 1
    elif outcome["status"] == 0:
        log.info("tillgate stopped")
    return outcome["status"]


def _worker_ready(reactor) -> None:
    """Tell the supervisor (one line on stdout), and copy the hot metrics into this worker's
    multiprocess files every second and once more at the end (gateway/metrics/multiproc.py)."""
    from twisted.internet import task

    from gateway.metrics.multiproc import FLUSH_INTERVAL, process_hot_files
    from gateway.workers.supervisor import READY_LINE

    hot = process_hot_files()
    if hot is not None:
        flushing = task.LoopingCall(hot.flush)
        flushing.clock = reactor
        flushing.start(FLUSH_INTERVAL)
        reactor.addSystemEventTrigger("after", "shutdown", hot.flush)
    sys.stdout.buffer.write(READY_LINE)
    sys.stdout.flush()


def _endpoints(config) -> list[str]:
    found = [f"{lst.name} {lst.protocol} on "
             + (f"{lst.host}:{lst.port}" if lst.transport == "tcp" else str(lst.device))
             for lst in config.listeners]
    found.append(f"http on {config.http.host}:{config.http.port}")
    return found


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
