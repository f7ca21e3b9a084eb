"""An outage of the store, told to the operator once it is over: the alert `redis_unreachable`.

The alert queue is a Redis stream, so while Redis does not answer no alert can be queued. During
the outage the operator has what needs no Redis: a WARNING line at its first failed call,
/healthz answering 503 and `tillgate_redis_up` at 0 (what a Prometheus alert rule watches,
docs/faults.md). The outage is written down when it starts and raised as an alert, delivered by
every configured sink, as soon as Redis answers again: how long it lasted and how many requests
the tills were answered `96` meanwhile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass

from gateway.ledger.runner import STORE_DOWN_LOG
from gateway.security.alerts.record import Alert

REDIS_UNREACHABLE_ALERT = "redis_unreachable"
DEDUP_SECONDS = 86400  # one alert per outage: keyed by when it began


@dataclass(frozen=True, slots=True)
class Outage:
    began: float  # monotonic, for its length
    began_at: float  # epoch seconds, for the operator
    refused_before: int  # requests answered 96 for a store failure before it began
    ended: float | None = None  # monotonic, once Redis answers again
    refused_after: int = 0  # requests answered 96 for a store failure when it ended

    @classmethod
    def begin(cls) -> Outage:
        return cls(time.monotonic(), time.time(), STORE_DOWN_LOG.total)

    def end(self) -> Outage:
        """This outage, ended now: its alert says the same however late it is raised (it is
        retried if Redis fails again as it is queued)."""
        return dataclasses.replace(self, ended=time.monotonic(),
                                   refused_after=STORE_DOWN_LOG.total)

    @property
    def key(self) -> str:
        """The alert's de-duplication value: one alert per outage."""
        return f"{self.began_at:.3f}"

    def alert(self, store: str, now: float) -> Alert:
        """The alert for this outage, ended now; `store` names the Redis (no password)."""
        if self.ended is None:
            return self.end().alert(store, now)
        seconds = self.ended - self.began
        refused = self.refused_after - self.refused_before
        began = dt.datetime.fromtimestamp(self.began_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Alert.for_gateway(
            REDIS_UNREACHABLE_ALERT, f"{store} did not answer for {seconds:.1f} s from {began}; "
            f"{refused} requests answered 96 meanwhile", now)
