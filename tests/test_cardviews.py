"""Card views per program and local day (gateway/ledger/cardviews.py), on a real redis-server."""

from __future__ import annotations

from dataclasses import replace

import pytest
import pytest_twisted
from test_ledger_support import ledger, ledger_config  # noqa: F401  (fixture)

from gateway.ledger import cardviews
from gateway.metrics.families import REGISTRY

DAY0 = 20_500


def counted(program: str, source: str) -> float:
    return REGISTRY.get_sample_value("tillgate_card_views_total",
                                     {"program": program, "source": source}) or 0.0


@pytest_twisted.ensureDeferred
async def test_views_are_counted_per_program_day_and_source(ledger):  # noqa: F811
    gift = ledger.config.programs["gift"]
    before = counted("gift", "member")
    for now in (DAY0 * 86400 + 10, DAY0 * 86400 + 20, (DAY0 + 2) * 86400 + 5):
        await ledger.call(cardviews.count_view(ledger.store, gift, "member", now))
    await ledger.call(cardviews.count_view(ledger.store, gift, "staff", DAY0 * 86400 + 30))
    seen = await ledger.call(cardviews.views(ledger.store, "gift", DAY0, DAY0 + 2))
    assert seen == {DAY0: {"staff": 1, "member": 2}, DAY0 + 1: {"staff": 0, "member": 0},
                    DAY0 + 2: {"staff": 0, "member": 1}}
    assert counted("gift", "member") - before == 3
    ttl = await ledger.call(ledger.store.client.ttl(cardviews.views_key("gift", DAY0)))
    assert 0 < ttl <= cardviews.VIEWS_KEPT_DAYS * 86400


@pytest_twisted.ensureDeferred
async def test_a_view_falls_on_the_programs_local_day(ledger):  # noqa: F811
    # 23:30 UTC is already the next day in Auckland (UTC+13 in its summer)
    zoned = replace(ledger.config.programs["loyalty"], timezone="Pacific/Auckland")
    await ledger.call(cardviews.count_view(ledger.store, zoned, "staff",
                                           DAY0 * 86400 + 23 * 3600 + 1800))
    seen = await ledger.call(cardviews.views(ledger.store, "loyalty", DAY0, DAY0 + 1))
    assert seen[DAY0 + 1]["staff"] == 1 and seen[DAY0]["staff"] == 0


@pytest_twisted.ensureDeferred
async def test_an_unknown_source_is_refused(ledger):  # noqa: F811
    with pytest.raises(ValueError, match="not one of"):
        await ledger.call(cardviews.count_view(ledger.store, ledger.config.programs["gift"],
                                               "till", 0.0))
