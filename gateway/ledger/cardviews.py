"""Card views: how often people looked at a card, per program and local day, for analytics.

A view is a person's look at one card: a staff member's lookup in the portal (`staff`), a card
holder's member page (`member`). Tills' balance inquiries are operations and are counted as
such (the journal and `tillgate_messages_*`), not here.

The counts live in Redis, one hash per program and day of the program's time zone
(`{views}:<program>:<day number>`, fields the sources), kept VIEWS_KEPT_DAYS; Prometheus gets
`tillgate_card_views_total{program, source}` (labels from the config's programs and the closed
set SOURCES, never from what a peer sends). A view is counted after the card was shown, so a
refused or unknown lookup is not a view.
"""

from __future__ import annotations

from prometheus_client import Counter

from gateway.config.model import Program
from gateway.ledger import loyalty
from gateway.ledger.store import Store
from gateway.metrics.families import REGISTRY

SOURCES = ("staff", "member")
VIEWS_KEPT_DAYS = 800  # two years and a bit: a year compared with the one before

CARD_VIEWS = Counter("tillgate_card_views_total",
                     "Cards shown to people, by program and by who looked (staff, member)",
                     ["program", "source"], registry=REGISTRY)


def views_key(program_id: str, day: int) -> str:
    return f"{{views}}:{program_id}:{day}"


async def count_view(store: Store, program: Program, source: str, now: float) -> None:
    if source not in SOURCES:
        raise ValueError(f"card view source {source!r} is not one of {SOURCES}")
    key = views_key(program.id, loyalty.ProgramDays(program.timezone).day(now))
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, source, 1)
        pipe.expire(key, VIEWS_KEPT_DAYS * 86400)
        await pipe.execute()
    CARD_VIEWS.labels(program.id, source).inc()


async def views(store: Store, program_id: str, first_day: int, last_day: int
                ) -> dict[int, dict[str, int]]:
    """The counts of each day from first_day to last_day (day numbers, inclusive); a day with
    no view maps to zeros."""
    days = list(range(first_day, last_day + 1))
    async with store.client.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(views_key(program_id, day))
        found = await pipe.execute()
    return {day: {source: int(counts.get(source.encode(), 0)) for source in SOURCES}
            for day, counts in zip(days, found, strict=True)}
