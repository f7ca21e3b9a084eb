"""Admin HTTP: the back office's customers, their types and their cards (docs/backoffice.md).

  GET    /v1/customers                ?status=&type=&email=&code_prefix=&limit=&offset=
                                      {"customers": [...], "total", "limit", "offset"}
  POST   /v1/customers                {"code", "name", "email"?, "phone"?, "type"?, "status"?,
                                       "consent"?, "notes"?}: 201 the customer
  GET    /v1/customers/<code>         the customer, its cards with status, balance and points
  PATCH  /v1/customers/<code>         the fields to change ("status": "inactive" makes its cards
                                      answered 62 at the till; "active" lifts it)
  POST   /v1/customers/<code>/cards   {"card": "<number>", "move"?: true}: link (move: from the
                                      customer holding it)
  DELETE /v1/customers/<code>/cards   {"card": "<number>"}: unlink
  POST   /v1/customers/import         a CSV file as the body (?move=true): all rows or none;
                                      400 {"error", "problems": ["line N: ..."]}
  GET    /v1/customers/export         text/csv, the import's columns (?status=&type=&code_prefix=)
  GET    /v1/customer-types           {"types": [...]}
  POST   /v1/customer-types           {"name", "default_program"?, "description"?}: 201

GET needs the scope customers:read, everything else customers:write. Card numbers travel in
bodies, never in URLs (paths reach access logs), and answers show them masked. A back office
that cannot be reached is a 503 that says why; the till path never waits for it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from twisted.web import resource, server

from gateway.admin.jsonio import (
    NOT_AN_OBJECT,
    Answer,
    StoreResource,
    answer_later,
    finish_json,
    json_bytes,
    json_object,
)
from gateway.backoffice import customercsv, links
from gateway.backoffice import customers as records
from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.config.model import Config
from gateway.ledger.store import Store
from gateway.reactor import deferred_from_coro
from gateway.security.tokens import Refusal, TokenAuth

log = logging.getLogger(__name__)
READ, WRITE = "customers:read", "customers:write"
EngineSource = Callable[[], Awaitable[AsyncEngine]]
Work = Callable[[AsyncEngine, Store], Coroutine[Any, Any, Answer]]


def _scope(request) -> str:
    return READ if request.method in (b"GET", b"HEAD") else WRITE


def _arg(request, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


def _query_filter(request) -> records.CustomerFilter:
    return records.CustomerFilter(status=_arg(request, "status"), type=_arg(request, "type"),
                                  email=_arg(request, "email"),
                                  code_prefix=_arg(request, "code_prefix"))


class CustomerResource(StoreResource):
    """What the customer resources share: the engine, the scope check and the answer."""

    def __init__(self, config: Config, store_source: Callable[[], Store | None], auth: TokenAuth,
                 engine_source: EngineSource):
        super().__init__(config, store_source, auth)
        self.engine_source = engine_source

    def refused(self, request) -> Refusal | None:
        refused = self.auth.check(request, _scope(request))
        return Refusal(*refused) if refused is not None else None

    def who(self, request) -> str:
        token = self.auth.token_of(request)
        return f"token:{token.id if token else 'loopback'}"

    def later(self, request, work: Work, *, store: bool = True):
        """Answer with `work(engine, store)`: its errors as JSON with their status; 503 while
        the store is not started or the back office cannot be reached."""
        opened = self.store_source()
        if store and opened is None:
            return json_bytes(request, 503, {"error": "store not started"})
        return answer_later(request, self._guarded(work, opened))

    async def _guarded(self, work: Work, store: Store | None) -> Answer:
        try:
            engine = await self.engine_source()
            return await work(engine, store)  # type: ignore[arg-type]
        except records.CustomerError as e:
            return e.status, {"error": str(e)}
        except customercsv.CustomerImportError as e:
            return 400, {"error": str(e), "problems": e.shown()}
        except BackofficeUnavailable as e:
            return 503, {"error": str(e)}
        except UNREACHABLE as e:
            return 503, {"error": f"back office: cannot reach it: {type(e).__name__}"}

    def card_of(self, body: dict[str, Any]) -> str | None:
        card = body.get("card")
        if not isinstance(card, str) or self.config.program_of_card(card.strip()) is None:
            return None
        return card.strip()


class Customers(CustomerResource):
    def getChildWithDefault(self, path: bytes, request):
        refused = self.refused(request)
        if refused is not None:
            return refused
        if path == b"":
            return self
        if path == b"import":
            return ImportCustomers(self)
        if path == b"export":
            return ExportCustomers(self)
        return OneCustomer(self, path.decode("utf-8", "replace"))

    def render(self, request):
        refused = self.refused(request)
        if refused is not None:
            return refused.render(request)
        return super().render(request)

    def render_GET(self, request):
        keep = _query_filter(request)
        try:
            limit = int(_arg(request, "limit") or 50)
            offset = int(_arg(request, "offset") or 0)
        except ValueError:
            limit = offset = -1
        problems = keep.problems()
        if not 1 <= limit <= records.LIST_LIMIT or offset < 0:
            problems.append(f"limit: 1 to {records.LIST_LIMIT}; offset: 0 or more")
        if problems:
            return json_bytes(request, 400, {"error": "; ".join(problems)})

        async def page(engine: AsyncEngine, _store: Store) -> Answer:
            async with engine.connect() as conn:
                found, total = await records.list_customers(conn, keep, limit, offset)
            return 200, {"customers": found, "total": total, "limit": limit, "offset": offset}
        return self.later(request, page, store=False)

    def render_POST(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        values, problems = records.check_fields(body, creating=True)
        if problems:
            return json_bytes(request, 400, {"error": "; ".join(problems)})
        who = self.who(request)

        async def create(engine: AsyncEngine, store: Store) -> Answer:
            async with engine.begin() as conn:
                await records.add_customer(conn, values)
            log.info("%s added customer %s", who, values["code"])
            return 201, await links.customer_view(engine, store, values["code"])
        return self.later(request, create)


class OneCustomer(resource.Resource):
    def __init__(self, parent: Customers, code: str):
        super().__init__()
        self.parent = parent
        self.code = code

    def getChild(self, path: bytes, request):
        if path == b"cards":
            return CustomerCards(self.parent, self.code)
        return Refusal(404, "no such resource (cards)")

    def render_GET(self, request):
        return self.parent.later(
            request, lambda engine, store: self._view(engine, store))

    async def _view(self, engine: AsyncEngine, store: Store) -> Answer:
        return 200, await links.customer_view(engine, store, self.code)

    def render_PATCH(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        values, problems = records.check_fields(body, creating=False)
        if not values and not problems:
            problems.append("nothing to change")
        if problems:
            return json_bytes(request, 400, {"error": "; ".join(problems)})
        who = self.parent.who(request)

        async def change(engine: AsyncEngine, store: Store) -> Answer:
            view = await links.change_customer(engine, store, self.code, values, who=who)
            if view["status_change"]:
                log.warning("%s: customer %s %s", who, self.code, view["status_change"])
            return 200, view
        return self.parent.later(request, change)


class CustomerCards(resource.Resource):
    isLeaf = True

    def __init__(self, parent: Customers, code: str):
        super().__init__()
        self.parent = parent
        self.code = code

    def _card_request(self, request, link: bool):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        unknown = sorted(set(body) - ({"card", "move"} if link else {"card"}))
        if unknown:
            return json_bytes(request, 400, {"error": f"{unknown[0]}: unknown field"})
        card = self.parent.card_of(body)
        if card is None:
            return json_bytes(request, 400, {"error": "card: the whole number of a card of a "
                                                      "configured program"})
        move = body.get("move", False)
        if not isinstance(move, bool):
            return json_bytes(request, 400, {"error": "move: true or false"})
        who = self.parent.who(request)

        async def act(engine: AsyncEngine, store: Store) -> Answer:
            if link:
                done = await links.link_card(engine, store, self.code, card, move=move, who=who)
            else:
                done = await links.unlink_card(engine, store, self.code, card, who=who)
            log.info("%s: card %s %s customer %s", who, done["card"],
                     "linked to" if link else "unlinked from", self.code)
            return 200, done
        return self.parent.later(request, act)

    def render_POST(self, request):
        return self._card_request(request, link=True)

    def render_DELETE(self, request):
        return self._card_request(request, link=False)


class ImportCustomers(resource.Resource):
    isLeaf = True

    def __init__(self, parent: Customers):
        super().__init__()
        self.parent = parent

    def render_POST(self, request):
        data = request.content.read()
        move = _arg(request, "move") in ("1", "true", "yes")
        who = self.parent.who(request)

        async def run(engine: AsyncEngine, store: Store) -> Answer:
            done = await customercsv.import_customers(engine, store, self.parent.config, data,
                                                      move=move, who=who)
            log.warning("%s imported customers: %s", who, done.as_dict())
            return 200, done.as_dict()
        return self.parent.later(request, run)


class ExportCustomers(resource.Resource):
    isLeaf = True

    def __init__(self, parent: Customers):
        super().__init__()
        self.parent = parent

    def render_GET(self, request):
        keep = _query_filter(request)
        if keep.problems():
            return json_bytes(request, 400, {"error": "; ".join(keep.problems())})
        d = deferred_from_coro(self._export(keep))
        d.addCallbacks(lambda text: self._send(request, text),
                       lambda failure: finish_json(request, 503,
                                                   {"error": failure.getErrorMessage()}))
        return server.NOT_DONE_YET

    async def _export(self, keep: records.CustomerFilter) -> str:
        out = io.StringIO()
        await customercsv.export_customers(await self.parent.engine_source(), out, keep)
        return out.getvalue()

    def _send(self, request, text: str) -> None:
        if request.finished or request._disconnected:
            return
        request.setHeader(b"content-type", b"text/csv; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.write(text.encode())
        request.finish()


class CustomerTypes(CustomerResource):
    def render(self, request):
        refused = self.refused(request)
        if refused is not None:
            return refused.render(request)
        return super().render(request)

    def getChild(self, path: bytes, request):
        if path == b"":
            return self
        return Refusal(404, "no such resource")

    def render_GET(self, request):
        async def listing(engine: AsyncEngine, _store: Store) -> Answer:
            async with engine.connect() as conn:
                return 200, {"types": await records.list_types(conn)}
        return self.later(request, listing, store=False)

    def render_POST(self, request):
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        values, problems = records.check_type(body, self.config.programs)
        if problems:
            return json_bytes(request, 400, {"error": "; ".join(problems)})

        async def create(engine: AsyncEngine, _store: Store) -> Answer:
            async with engine.begin() as conn:
                await records.add_type(conn, values)
                found = await records.list_types(conn)
            return 201, next(t for t in found if t["name"] == values["name"])
        return self.later(request, create, store=False)
