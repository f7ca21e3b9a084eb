"""Admin HTTP: e-cards, virtual gift cards sent by e-mail (docs/ecards.md).

  POST /v1/ecards               {"program", "amount", "recipient_name", "recipient_email",
                                 "sender_name", "message"?, "deliver_at"?}   scope cards:issue
                                with an Idempotency-Key header: 201 the order placed, 200 the
                                same order found again (never a second card)
  GET  /v1/ecards               ?state=queued|sending|sent|failed&limit=&offset=
                                {"ecards": [...], "total", "limit", "offset"}  scope cards:read
  GET  /v1/ecards/<id>          one order and its delivery state               scope cards:read
  POST /v1/ecards/<id>/resend   queue a sent or failed e-mail again            scope cards:issue

Answers show the card masked: the number and the PIN go to the recipient's e-mail only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from twisted.web import resource

from gateway.admin.jsonio import NOT_AN_OBJECT, Answer, answer_later, json_bytes, json_object
from gateway.backoffice import ecards as rows
from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.config.model import Config
from gateway.issuance.ecards import EcardRefused, parse_order, place_order, resend
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.security.tokens import Refusal, TokenAuth

log = logging.getLogger(__name__)
LIST_LIMIT = 500


def _arg(request, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


class Ecards(resource.Resource):
    def __init__(self, config: Config, store_source: Callable[[], Store | None], auth: TokenAuth,
                 processor_source: Callable[[], Processor | None],
                 engine_source: Callable[[], Awaitable[AsyncEngine]],
                 wake: Callable[[], None], clock: Callable[[], float] = time.time):
        super().__init__()
        self.config = config
        self.store_source = store_source
        self.auth = auth
        self.processor_source = processor_source
        self.engine_source = engine_source
        self.wake = wake  # the delivery queue's: a new order is sent now, not at the next poll
        self.clock = clock

    def _refused(self, request, scope: str) -> Refusal | None:
        refused = self.auth.check(request, scope)
        return Refusal(*refused) if refused is not None else None

    def _who(self, request) -> str:
        token = self.auth.token_of(request)
        return f"token:{token.id if token else 'loopback'}"

    def getChildWithDefault(self, path: bytes, request):
        if path == b"":
            return self
        return OneEcard(self, path.decode("ascii", "replace"))

    def render_GET(self, request):
        refused = self._refused(request, "cards:read")
        if refused is not None:
            return refused.render(request)
        state = _arg(request, "state")
        try:
            limit, offset = int(_arg(request, "limit") or 50), int(_arg(request, "offset") or 0)
        except ValueError:
            limit = offset = -1
        if state is not None and state not in rows.STATES:
            return json_bytes(request, 400, {"error": f"state: one of {', '.join(rows.STATES)}"})
        if not 1 <= limit <= LIST_LIMIT or offset < 0:
            return json_bytes(request, 400, {"error": f"limit: 1 to {LIST_LIMIT}; offset: 0 "
                                                      "or more"})

        async def page(engine: AsyncEngine) -> Answer:
            found, total = await rows.listing(engine, state=state, limit=limit, offset=offset)
            return 200, {"ecards": [r.as_dict() for r in found], "total": total,
                         "limit": limit, "offset": offset}

        return answer_later(request, self.guarded(page))

    def render_POST(self, request):
        refused = self._refused(request, "cards:issue")
        if refused is not None:
            return refused.render(request)
        key = (request.getHeader(b"idempotency-key") or b"").decode("ascii", "replace").strip()
        if not (1 <= len(key) <= 100 and key.isascii() and key.isprintable()):
            return json_bytes(request, 400, {"error": "an Idempotency-Key header of 1 to 100 "
                                                      "printable ASCII characters is required"})
        body = json_object(request)
        if body is None:
            return json_bytes(request, 400, {"error": NOT_AN_OBJECT})
        now = self.clock()
        try:
            order = parse_order(self.config, body, now)
        except EcardRefused as e:
            return json_bytes(request, e.status, {"error": str(e)})
        store, processor = self.store_source(), self.processor_source()
        if store is None or processor is None:
            return json_bytes(request, 503, {"error": "store not started"})
        who = self._who(request)

        async def place(engine: AsyncEngine) -> Answer:
            row, created = await place_order(self.config, store, processor, engine, order, who,
                                             key, now)
            if created:
                log.info("%s: e-card %s ordered (%s, %s)", who, row.id[:8], row.program,
                         row.card_mask)
                self.wake()
            return (201 if created else 200), {"ecard": row.as_dict()}

        return answer_later(request, self.guarded(place))

    async def guarded(self, work: Callable[[AsyncEngine], Coroutine[Any, Any, Answer]]
                      ) -> Answer:
        try:
            return await work(await self.engine_source())
        except EcardRefused as e:
            answer: dict[str, Any] = {"error": str(e)}
            if e.code is not None:
                answer["code"] = e.code
            return e.status, answer
        except BackofficeUnavailable as e:
            return 503, {"error": str(e)}
        except UNREACHABLE as e:
            return 503, {"error": f"back office: cannot reach it: {type(e).__name__}"}


class OneEcard(resource.Resource):
    """/v1/ecards/<id> (GET) and /v1/ecards/<id>/resend (POST)."""

    def __init__(self, ecards: Ecards, order_id: str, action: str = ""):
        super().__init__()
        self.ecards = ecards
        self.order_id = order_id
        self.action = action

    def getChild(self, path: bytes, request):
        if path == b"resend" and not self.action:
            return OneEcard(self.ecards, self.order_id, "resend")
        return Refusal(404, "no such resource (resend)")

    def render_GET(self, request):
        if self.action:
            return json_bytes(request, 405, {"error": "POST to resend"})
        refused = self.ecards._refused(request, "cards:read")
        if refused is not None:
            return refused.render(request)

        async def one(engine: AsyncEngine) -> Answer:
            row = await rows.get(engine, self.order_id)
            if row is None:
                return 404, {"error": "no such e-card order"}
            return 200, {"ecard": row.as_dict()}

        return answer_later(request, self.ecards.guarded(one))

    def render_POST(self, request):
        if not self.action:
            return json_bytes(request, 405, {"error": "GET the order, or POST .../resend"})
        refused = self.ecards._refused(request, "cards:issue")
        if refused is not None:
            return refused.render(request)
        who = self.ecards._who(request)

        async def again(engine: AsyncEngine) -> Answer:
            row = await resend(engine, self.order_id, self.ecards.clock())
            log.info("%s: e-card %s queued to be sent again", who, row.id[:8])
            self.ecards.wake()
            return 200, {"ecard": row.as_dict()}

        return answer_later(request, self.ecards.guarded(again))
