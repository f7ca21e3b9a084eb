"""Keep a load run under the gateway's refusing card rules (a load test is no balance sweep).

The default config refuses the 31st balance inquiry on one card within 60 s (HOST-SPEC 6); a
load run sending thousands of inquiries a second to a few hundred cards would measure 65s.
So a run knows, per operation, the strictest card-scope rule that refuses by count (`decline`
or `lock_card`) and sends that operation only to a card with room left:

- room is counted in a sliding interval of `window + margin` seconds of send times. A sliding
  interval holding at most N sends puts at most N into any of the gateway's fixed windows,
  whatever the two clocks say; the margin (the run's timeout) covers requests that queue in the
  gateway for a while before they are counted.
- cards are tried round-robin; when every card is full the operation is `held back` (counted in
  the report) and the caller sends an operation without a limit instead, so the run keeps its
  load and the report says how many more cards (`--cards`) would have carried the mix.

Amount limits, and rules of other scopes, are not paced: the default config has none that refuse.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.config.rules import Rule
from protocols.model import Op


@dataclass(frozen=True, slots=True)
class CardLimit:
    rule: str  # the rule's name, for the report
    max_count: int
    window: int  # seconds


def card_limits(rules: Iterable[Rule], ops: Iterable[Op]) -> dict[Op, CardLimit]:
    """The strictest refusing count rule of card scope for each of `ops` (by rate)."""
    limits: dict[Op, CardLimit] = {}
    for op in ops:
        for rule in rules:
            if (rule.scope != "card" or rule.event != op.value or not rule.max_count
                    or rule.action not in ("decline", "lock_card")):
                continue
            limit = CardLimit(rule.name, rule.max_count, rule.window)
            known = limits.get(op)
            if known is None or limit.max_count / limit.window < known.max_count / known.window:
                limits[op] = limit
    return limits


class CardPacer:
    """Which card may take the next request of one limited operation, if any."""

    def __init__(self, limit: CardLimit, cards: Sequence[str], margin: float):
        self.limit = limit
        self.cards = list(cards)
        self.span = limit.window + margin
        self._sent: list[deque[float]] = [deque() for _ in self.cards]
        self._next = 0
        self._full_until = 0.0  # every card is full until then: no need to look

    def card(self, now: float) -> str | None:
        """A card with room at `now` (its send is recorded), or None: every card is full."""
        if now < self._full_until:
            return None
        earliest = None
        for _ in range(len(self.cards)):
            i = self._next
            self._next = (i + 1) % len(self.cards)
            sent = self._sent[i]
            while sent and sent[0] <= now - self.span:
                sent.popleft()
            if len(sent) < self.limit.max_count:
                sent.append(now)
                return self.cards[i]
            free_at = sent[0] + self.span
            earliest = free_at if earliest is None else min(earliest, free_at)
        self._full_until = earliest or now
        return None
