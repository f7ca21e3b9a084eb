"""The alert record: built from a velocity trip or a one-off event, serialised as JSON."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from gateway.security.rules import Trip
from protocols.model import Request, mask_card


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    scope: str  # card | terminal | merchant | operator | source | gateway (for_gateway)
    value: str  # scope value; a card is masked
    event: str
    action: str
    window: int  # seconds
    window_start: int  # epoch seconds
    count: int
    amount: int  # minor units
    max_count: int
    max_amount: int
    terminal: str
    merchant: str
    card: str  # masked, or ""
    time: int  # epoch seconds when raised
    detail: str = ""  # for one-off events (no rule): what happened, never a whole card number

    @property
    def message(self) -> str:
        if self.detail and self.scope == "gateway":
            return f"{self.event}: {self.detail}"
        if self.detail:
            return f"{self.event}: {self.detail} (card {self.card or '-'})"
        limit = (f"more than {self.max_count} in {self.window} s" if self.max_count
                 else f"more than {self.max_amount} (minor units) in {self.window} s")
        return (f"rule {self.rule}: {self.event} {limit} for {self.scope} {self.value} "
                f"(count {self.count}, amount {self.amount}); action {self.action}")

    @property
    def time_text(self) -> str:
        return dt.datetime.fromtimestamp(self.time, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Alert:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @classmethod
    def for_event(cls, name: str, req: Request, detail: str, amount: int, now: float) -> Alert:
        """A one-off event the host must report (HOST-SPEC 2.2/2.6: an advice's overdraft, a
        refused reversal), as an alert of the pseudo-rule `name`."""
        return cls(rule=name, scope="card", value=mask_card(req.card), event=name,
                   action="alert", window=0, window_start=int(now), count=1, amount=amount,
                   max_count=0, max_amount=0, terminal=req.terminal, merchant=req.merchant,
                   card=mask_card(req.card), time=int(now), detail=detail)

    @classmethod
    def for_gateway(cls, name: str, detail: str, now: float) -> Alert:
        """An event of the gateway itself, not of a request (its embedded Redis restarted)."""
        return cls(rule=name, scope="gateway", value="", event=name, action="alert", window=0,
                   window_start=int(now), count=1, amount=0, max_count=0, max_amount=0,
                   terminal="", merchant="", card="", time=int(now), detail=detail)

    @classmethod
    def from_trip(cls, trip: Trip, req: Request, now: float) -> Alert:
        rule = trip.rule
        return cls(rule=rule.name, scope=rule.scope, value=trip.value, event=rule.event,
                   action=rule.action, window=rule.window, window_start=trip.window_start,
                   count=trip.count, amount=trip.amount, max_count=rule.max_count,
                   max_amount=rule.max_amount, terminal=req.terminal, merchant=req.merchant,
                   card=mask_card(req.card), time=int(now))
