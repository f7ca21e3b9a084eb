"""One log line per interval for an error that repeats, with how often it happened.

A store outage fails every request: logging each one wrote 108,857 WARNING lines (25 MB) in 13 s
(issue 12). The first occurrence is logged as it happens; the ones after it within `interval`
are counted, and one line at the end of each interval gives the count and the last message, for
as long as the run goes on. An interval with none ends the run; the next occurrence is logged
in full again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any


class RepeatedLog:
    """`note(message, *args)` logs the first of a run at once and summarises the rest."""

    def __init__(self, logger: logging.Logger, what: str, *, level: int = logging.WARNING,
                 interval: float = 1.0):
        self.logger = logger
        self.what = what  # names the run in the summary: "requests answered 96 (store down)"
        self.level = level
        self.interval = interval
        self._window_end = 0.0
        self._count = 0  # occurrences after the first in this window, not logged yet
        self.total = 0  # occurrences since start (an outage's alert tells how many it refused)
        self._last: tuple[str, tuple[Any, ...]] = ("", ())
        self._flush_timer: asyncio.TimerHandle | None = None

    def note(self, message: str, *args: Any) -> None:
        self.total += 1
        now = time.monotonic()
        if now >= self._window_end:
            self._summarise()
            self._window_end = now + self.interval
            self.logger.log(self.level, message + " (repeats are counted: one line per %g s)",
                            *args, self.interval)
            return
        self._count += 1
        self._last = (message, args)
        if self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the next note after the window flushes
                return
            self._flush_timer = loop.call_later(self._window_end - now, self.flush)

    def flush(self) -> None:
        """At the end of a window: log its count; with repeats the run goes on, so the next
        occurrence is counted in a new window rather than logged in full."""
        self._flush_timer = None
        if self._summarise():
            self._window_end = time.monotonic() + self.interval

    def _summarise(self) -> bool:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._count:
            return False
        count, self._count = self._count, 0
        message, args = self._last
        self.logger.log(self.level, "%d more %s in %g s; the last: " + message, count,
                        self.what, self.interval, *args)
        return True
