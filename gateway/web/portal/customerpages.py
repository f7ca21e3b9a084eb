"""Customers: the list (search by name, e-mail, phone or card; paged), a customer's page with
their cards (status, balance and points from Redis) and recent history, and the list as CSV.

Everything goes through the back office's customer code, the same as the admin API's
`/v1/customers` (gateway/backoffice/customers.py: CustomerFilter, list_customers; links.py's
customer_view; customercsv.py's export). Head office sees every customer; a merchant manager
the holders of a card with an entry at their merchant (the reports' scope of a manager:
CustomerFilter.merchant), and is refused another's customer as if it did not exist (404, so
the refusal says nothing of who is a customer); staff have no customers page.

The search form is POSTed (with its CSRF token): a card number is looked up by its key id
(ledger/cards.card_id) and the holder shown at once, so the number is never in a URL (paths
and query strings reach access logs and proxies, as the admin API's customer routes say), nor
stored, logged or put back in the page; other text is redirected to `GET ?q=<text>`, which can
be paged and bookmarked. A GET's `q` is only ever text. Pages are keyset-paged in code order
(`after=<code>`), so the last page of 10,000 customers costs what the first does.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from gateway.backoffice import customercsv
from gateway.backoffice.customers import CustomerFilter, NotFound, list_customers
from gateway.backoffice.links import customer_view
from gateway.backoffice.reports.money import Money
from gateway.backoffice.schema import card_holders, customers, journal_entries
from gateway.ledger.cards import card_id
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Asset, Ctx, Page, Redirect, Reply, Route
from protocols.carddata import CardDataError, card_number
from protocols.model import mask_card

log = logging.getLogger(__name__)

PAGE = 50  # customers a page lists
HISTORY = 20  # a customer's entries shown, newest first
MAX_SEARCH = 100
MANAGERS = ("head_office", "merchant_manager")


def _card_digits(text: str) -> str | None:
    """The card number `text` is, if it is one (all digits, a card's length): looked up by its
    key id. Anything else is a name, e-mail or phone to search for."""
    compact = text.replace(" ", "")
    if not compact.isdigit() or not 12 <= len(compact) <= 19:
        return None
    try:
        return card_number(compact)
    except CardDataError:
        return None


def _merchant(ctx: Ctx) -> str | None:
    """The merchant whose customers the operator may see; None: all (head office)."""
    operator = ctx.operator
    assert operator is not None
    return operator.merchant if operator.role != "head_office" else None


def text_filter(ctx: Ctx) -> tuple[CustomerFilter, str]:
    """The GET query's filter, within the operator's scope, and its search text."""
    text = ctx.query.get("q", "").strip()[:MAX_SEARCH]
    return CustomerFilter(search=text or None, merchant=_merchant(ctx)), text


async def show_list(ctx: Ctx) -> Reply:
    keep, text = text_filter(ctx)
    return await _listed(ctx, keep, text, text, ctx.query.get("after", "")[:32] or None)


async def search(ctx: Ctx) -> Reply:
    """The search form: a card's holder now; text by redirect to its GET page."""
    text = ctx.form.get("q", "").strip()[:MAX_SEARCH]
    number = _card_digits(text) if text else None
    if number is None:
        return Redirect(f"customers?q={quote(text)}" if text else "customers")
    keep = CustomerFilter(card_id=card_id(number), merchant=_merchant(ctx))
    return await _listed(ctx, keep, mask_card(number), "", None)


async def _listed(ctx: Ctx, keep: CustomerFilter, shown: str, query: str, after: str | None
                  ) -> Reply:
    """A page of the customers `keep` lets through, after the code `after`."""
    engine = await ctx.portal.engine()
    async with engine.connect() as conn:
        found, total = await list_customers(conn, keep, PAGE + 1, after=after)
    more = len(found) > PAGE
    found = found[:PAGE]
    return Page("customers.html", {
        "title": "Customers", "customers": found, "total": total, "search": shown,
        "query": query, "card_search": keep.card_id is not None, "after": after,
        "next_after": found[-1]["code"] if more else None})


async def download(ctx: Ctx) -> Reply:
    keep, _text = text_filter(ctx)
    operator = ctx.operator
    assert operator is not None
    out = io.StringIO()
    count = await customercsv.export_customers(await ctx.portal.engine(), out, keep)
    log.info("portal: operator %d downloaded %d customers", operator.id, count)
    return Asset(out.getvalue().encode(), b"text/csv; charset=utf-8", b"no-store",
                 "customers.csv")


async def show_one(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    code = ctx.query.get("code", "")[:32]
    engine = await ctx.portal.engine()
    keep = CustomerFilter(merchant=operator.merchant if operator.role != "head_office"
                          else None)
    async with engine.connect() as conn:
        visible = await conn.scalar(select(customers.c.id).where(
            customers.c.code == code, *keep.conditions()))
    if visible is None:
        if operator.role != "head_office":
            log.warning("portal: operator %d (manager of %s) asked for customer %r, not theirs "
                        "or none", operator.id, operator.merchant, code)
        return Page("customer.html", {"title": "Customer", "customer": None}, 404)
    try:
        view = await customer_view(engine, ctx.portal.store(), code)
    except NotFound:  # removed between the two reads
        return Page("customer.html", {"title": "Customer", "customer": None}, 404)
    money = Money(ctx.portal.config)
    for card in view["cards"]:
        card["balance_text"] = money.format(card.get("balance"), card.get("program"))
    return Page("customer.html", {"title": f"Customer {view['name']}", "customer": view,
                                  "entries": await _history(engine, int(visible), money)})


async def _history(engine: Any, customer: int, money: Money) -> list[dict[str, Any]]:
    """The newest entries of the customer's cards (the back office's journal)."""
    j = journal_entries.c
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(j.t, j.card_mask, j.program, j.op, j.dv, j.dp, j.bal, j.pts, j.merchant)
            .where(j.card_id.in_(select(card_holders.c.card_id)
                                 .where(card_holders.c.customer_id == customer)))
            .order_by(j.t.desc(), j.seq.desc()).limit(HISTORY))).all()
    return [{"t": t, "card": mask, "program": program, "op": op,
             "dv": money.format(dv, program), "dp": dp, "bal": money.format(bal, program),
             "pts": pts, "merchant": merchant}
            for t, mask, program, op, dv, dp, bal, pts, merchant in rows]


ROUTES = {
    ("GET", "customers"): Route(show_list, IN, MANAGERS),
    ("POST", "customers"): Route(search, IN, MANAGERS),
    ("GET", "customers.csv"): Route(download, IN, MANAGERS),
    ("GET", "customers/show"): Route(show_one, IN, MANAGERS),
}
