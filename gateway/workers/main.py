"""`tillgate serve --workers N` (N > 1): check, set up the metrics directory, run the supervisor.

PROMETHEUS_MULTIPROC_DIR is set here, in the environment the workers inherit: they read it when
they import prometheus_client (gateway/metrics/multiproc.py).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys

from gateway.config.model import Config
from gateway.embedded_redis import EmbeddedRedisError

log = logging.getLogger("tillgate.workers")


def worker_command(args) -> list[str]:
    """How to start a worker: this interpreter, the same config file, `serve`."""
    command = [sys.executable, "-m", "gateway.cli", "serve"]
    if not getattr(args, "config_builtin", False):
        command += ["--config", str(args.config)]
    return command


def run_supervisor(args, config: Config) -> int:
    from gateway.listeners import reuseport

    if not reuseport.supported():
        print(f"tillgate: serve --workers {args.workers}: this platform has no SO_REUSEPORT "
              "(Linux has); run one process (--workers 1) per port instead", file=sys.stderr)
        return 2
    from gateway.metrics import multiproc

    metrics_dir = config.data_dir / "metrics"
    multiproc.prepare_directory(metrics_dir)
    os.environ[multiproc.ENV] = str(metrics_dir)

    from gateway.reactor import install_asyncio_reactor
    from gateway.security.logmask import setup_logging

    setup_logging(config.log_level, programs=config.programs.values(), process="supervisor")
    loop = install_asyncio_reactor()
    from twisted.internet import reactor

    from gateway.reactor import deferred_from_coro, stop_on_signals
    from gateway.workers.supervisor import CannotStart, Supervisor

    supervisor = Supervisor(config, args.workers, worker_command(args),
                            multiproc.HotFiles(metrics_dir))
    outcome = {"status": 0}

    async def supervise() -> None:
        try:
            await supervisor.run(reactor)
        except (CannotStart, EmbeddedRedisError, OSError) as e:
            print(f"tillgate: cannot start: {e}", file=sys.stderr)
            outcome["status"] = 1
        except Exception as e:
            log.exception("supervisor failed")
            print(f"tillgate: supervisor failed: {e}", file=sys.stderr)
            outcome["status"] = 1
        else:
            outcome["status"] = 0 if supervisor.clean else 1
        reactor.stop()

    reactor.callWhenRunning(lambda: deferred_from_coro(supervise()))
    stop_on_signals(loop, supervisor.stop)
    loop.add_signal_handler(signal.SIGHUP, supervisor.reload)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # as a worker does: a stuck one
    reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]  # not in IReactorCore
    log.info("tillgate stopped (%d workers)", args.workers)
    return outcome["status"]
