"""POST /v1/cards/activate (scope cards:issue): activate a batch of issued cards
(docs/card-activation.md; the service is gateway/issuance/activatebatch.py).

Body, amounts in minor units (whole points for loyalty), never floats:

  {"program": "gift", "cards": ["6039...", {"card": "6039...", "amount": 1500}], "amount": 2500}
  {"program": "gift", "first": "6039...", "last": "6039...", "amount": 2500}

A card without an amount of its own takes `amount`. Lines are numbered from 1 in the order
given. Answers: 200 with a result per card (every one activated or replayed), 422 with
`problems` (the batch refused whole, nothing activated) or with results where some card was
refused at activation. Sending the same batch again activates nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from twisted.web import resource

from gateway.admin.jsonio import NOT_AN_OBJECT, Answer, answer_later, json_bytes, json_object
from gateway.admin.jsonio import whole as _whole
from gateway.config.model import Config
from gateway.issuance import activatebatch
from gateway.issuance.activatefile import ActivationBatch, from_amounts, from_range
from gateway.issuance.importfile import ImportFileError
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store

log = logging.getLogger(__name__)
FIELDS = frozenset({"program", "cards", "first", "last", "amount"})


class CardsRoot(Protocol):
    """What this resource needs of gateway/admin/cards.py's Cards (which routes here)."""

    config: Config
    store_source: Callable[[], Store | None]
    processor_source: Callable[[], Processor | None]


class ActivateCards(resource.Resource):
    isLeaf = True

    def __init__(self, cards: CardsRoot, who: str):
        super().__init__()
        self.cards = cards  # config, store and processor
        self.who = who

    def render_POST(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        batch = self._batch(body)
        if isinstance(batch, str):
            return json_bytes(request, 400, {"error": batch})
        if isinstance(batch, list):
            return json_bytes(request, 422, {"error": "batch refused, nothing activated",
                                             "problems": batch})
        store, processor = self.cards.store_source(), self.cards.processor_source()
        if store is None or processor is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self._activate(store, processor, batch))

    def _batch(self, body: object) -> ActivationBatch | list[str] | str:
        """The batch, its problems by line, or what is wrong with the body's form."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return f"unknown field {unknown[0]!r} (known: {', '.join(sorted(FIELDS))})"
        program, amount = body.get("program"), body.get("amount")
        if not isinstance(program, str):
            return "program: a program id"
        if amount is not None and not _whole(amount):
            return "amount: a whole number of minor units (points for loyalty), or absent"
        ranged = "first" in body or "last" in body
        if ranged == ("cards" in body):
            return "give cards, or first and last"
        try:
            if ranged:
                first, last = body.get("first"), body.get("last")
                if not (isinstance(first, str) and isinstance(last, str)):
                    return "first, last: card numbers as strings"
                return from_range(self.cards.config, program, first, last, amount)
            entries = _entries(body.get("cards"))
            if isinstance(entries, str):
                return entries
            return from_amounts(self.cards.config, program, entries, amount)
        except ImportFileError as e:
            return e.problems

    async def _activate(self, store: Store, processor: Processor,
                        batch: ActivationBatch) -> Answer:
        checked = await activatebatch.check(store, batch)
        answer: dict[str, Any] = {"batch": batch.id, "program": batch.program.id}
        if checked.problems:
            return 422, {**answer, "error": "batch refused, nothing activated",
                         "problems": checked.problems}
        operator = f"token:{self.who}"
        alert = await activatebatch.alert_if_large(processor, batch, operator)
        results = await activatebatch.activate(processor, batch, checked, operator, "http")
        counts = activatebatch.summary(results)
        log.info("%s: batch %s of %d %s card(s): %s", operator, batch.id[:24], len(results),
                 batch.program.id, counts)
        answer.update(counts, alert=alert is not None,
                      results=[r.as_dict() for r in results])
        if counts["refused"]:
            return 422, {**answer, "error": "some cards were refused"}
        return 200, answer


def _entries(cards: object) -> list[tuple[int, str, str | int | None]] | str:
    if not isinstance(cards, list):
        return "cards: a list of card numbers or {\"card\", \"amount\"} objects"
    entries: list[tuple[int, str, str | int | None]] = []
    for line, item in enumerate(cards, start=1):
        if isinstance(item, str):
            entries.append((line, item, None))
            continue
        if not (isinstance(item, dict) and isinstance(item.get("card"), str)
                and set(item) <= {"card", "amount"}):
            return f"cards[{line - 1}]: a card number or {{\"card\", \"amount\"}}"
        amount = item.get("amount")
        if amount is not None and not _whole(amount):
            return f"cards[{line - 1}].amount: a whole number of minor units"
        entries.append((line, item["card"], amount))
    return entries
