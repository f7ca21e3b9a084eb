"""Config reload without a restart (buildbot's checkConfig/reconfig split; docs/operations.md).

A reload runs in three steps, and changes nothing unless all three pass:

  check    read and validate the whole file, with the `load_config` of `tillgate config check`
           (in a worker thread: a large file does not hold the reactor up), then refuse any
           change to a setting only a restart can change (gateway/config/diff.py);
  prepare  build everything derived from the new config (a Processor, its rules and PIN keys)
           without touching the running one (`prepare` raises: refused);
  commit   the callable `prepare` returned: plain assignments, on the reactor thread, in one
           go. A request is judged wholly by the config before or wholly by the one after.

Every reload ends in an `Outcome` (applied, or refused with every reason), logged in one line,
counted in tillgate_config_reloads_total{outcome}, written to `<data_dir>/config-reload.json`
for `tillgate config reload`, and handed to whoever asked (SIGHUP, the admin API).

Reloads never overlap: one that is asked for while another runs waits for it, and every request
that arrives meanwhile is answered by the same next run (coalesced), which reads the file after
all of them arrived.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred, ensureDeferred

from gateway import runfiles
from gateway.config.diff import changes, describe, needs_restart
from gateway.config.model import Config, ConfigError, load_config
from gateway.metrics import families as metrics

log = logging.getLogger("tillgate.reload")

Commit = Callable[[], None]


@dataclass
class Outcome:
    applied: bool
    trigger: str  # what asked: SIGHUP, api (token id), ...
    path: str
    started_at: float  # when the file was about to be read (after the request arrived)
    finished_at: float
    generation: int  # of the config running afterwards
    sha256: str  # of the file running afterwards
    errors: list[str] = field(default_factory=list)
    changes: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": "applied" if self.applied else "refused", "trigger": self.trigger,
                "path": self.path, "started_at": self.started_at,
                "finished_at": self.finished_at, "generation": self.generation,
                "sha256": self.sha256, "errors": self.errors, "changes": self.changes}


def load_in_thread(path: str) -> Deferred[Config]:
    return threads.deferToThread(load_config, path)


class Reloader:
    """`current()`: the running config. `prepare(new)`: build what the new config needs and
    return the commit (raise to refuse). `data_dir`: where the outcome file goes (None: none)."""

    def __init__(self, current: Callable[[], Config], prepare: Callable[[Config], Commit],
                 data_dir: Path | None = None,
                 load: Callable[[str], Deferred[Config]] = load_in_thread,
                 clock: Callable[[], float] = time.time):
        self.current = current
        self.prepare = prepare
        self.data_dir = data_dir
        self.load = load
        self.clock = clock
        self.generation = 1
        self.loaded_at = clock()
        self.last: Outcome | None = None
        self._running = False
        self._waiting: list[Deferred[Outcome]] = []  # answered by the run after this one
        metrics.CONFIG_GENERATION.set(self.generation)
        metrics.CONFIG_LOADED.set(self.loaded_at)

    def state(self) -> dict[str, Any]:
        """Which config runs: for /healthz and GET /v1/config."""
        config = self.current()
        return {"path": config.path, "sha256": config.digest, "generation": self.generation,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}

    def reload(self, trigger: str) -> Deferred[Outcome]:
        """Reload the running config's file; fires with the Outcome (never errbacks)."""
        d: Deferred[Outcome] = Deferred()
        if self._running:
            self._waiting.append(d)
        else:
            self._start(trigger, [d])
        return d

    def _start(self, trigger: str, waiters: list[Deferred[Outcome]]) -> None:
        self._running = True
        ensureDeferred(self._run(trigger)).addCallback(self._finished, waiters)

    def _finished(self, outcome: Outcome, waiters: list[Deferred[Outcome]]) -> None:
        self._running = False
        if self._waiting:  # asked for while this one ran: one more run answers them all
            waiting, self._waiting = self._waiting, []
            self._start(f"{outcome.trigger}, then {len(waiting)} more", waiting)
        for d in waiters:
            d.callback(outcome)

    async def _run(self, trigger: str) -> Outcome:
        started = self.clock()
        old = self.current()
        try:
            new = await self.load(old.path)
        except ConfigError as e:
            return self._refused(trigger, started, old, e.errors)
        except Exception as e:  # reading the file failed in an unforeseen way: still refused
            log.debug("loading the config failed", exc_info=True)
            return self._refused(trigger, started, old, [f"{old.path}: cannot load: {e}"])
        restart = needs_restart(old, new)
        if restart:
            return self._refused(trigger, started, old, restart)
        found = changes(old, new)
        try:
            commit = self.prepare(new)
        except Exception as e:
            log.debug("preparing the new config failed", exc_info=True)
            return self._refused(trigger, started, old, [f"cannot apply: {e}"])
        commit()
        self.generation += 1
        self.loaded_at = self.clock()
        metrics.CONFIG_GENERATION.set(self.generation)
        metrics.CONFIG_LOADED.set(self.loaded_at)
        outcome = self._ended(Outcome(True, trigger, new.path, started, self.loaded_at,
                                      self.generation, new.digest, changes=found))
        log.info("config reload (%s) applied: %s is generation %d (sha256 %s): %s", trigger,
                 new.path, self.generation, new.digest[:12], describe(found))
        return outcome

    def _refused(self, trigger: str, started: float, old: Config,
                 errors: list[str]) -> Outcome:
        outcome = self._ended(Outcome(False, trigger, old.path, started, self.clock(),
                                      self.generation, old.digest, errors=list(errors)))
        log.error("config reload (%s) refused, generation %d keeps running: %s", trigger,
                  self.generation, "; ".join(errors))
        return outcome

    def _ended(self, outcome: Outcome) -> Outcome:
        self.last = outcome
        metrics.CONFIG_RELOADS.labels("applied" if outcome.applied else "refused").inc()
        if self.data_dir is not None:
            try:
                runfiles.write_reload_outcome(self.data_dir, outcome.as_dict())
            except OSError as e:  # the reload stands; only the CLI's view of it is lost
                log.error("cannot write %s: %s", self.data_dir / runfiles.RELOAD_FILE, e)
        return outcome
