"""Which worker of `tillgate serve --workers N` this process is, and what only one runs.

Worker 0 runs what must run once per gateway (docs/scaling.md, "Workers"): the alert delivery
loops (ordered per sink, one consumer per host), the back office's feed consumer, the e-card
queue, the points expiry sweep, and the serial listeners (a device has one reader). Every
worker serves the TCP listeners and the admin HTTP API on the shared ports.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerRole:
    index: int
    count: int

    @property
    def runs_singletons(self) -> bool:
        return self.index == 0

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> WorkerRole:
        """`INDEX/COUNT`, as the supervisor passes it (`serve --worker 1/2`)."""
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit()) or int(index) >= int(count):
            raise ValueError(f"--worker: expected INDEX/COUNT with INDEX < COUNT, got {text!r}")
        return cls(int(index), int(count))
