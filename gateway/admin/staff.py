"""Admin HTTP: a staff member's recent interactions (gateway/backoffice/staff.py).

  GET /v1/staff/<opid>/recent[?days=7]   {"operator", "since", "days", "cards", "entries"}
                                          scope staff:read

Cards are masked. A back office that cannot be reached is a 503 that says why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from twisted.web import resource

from gateway.admin.jsonio import Answer, answer_later
from gateway.backoffice import staff
from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.security.tokens import Refusal, TokenAuth

EngineSource = Callable[[], Awaitable[AsyncEngine]]


class Staff(resource.Resource):
    def __init__(self, auth: TokenAuth, engine_source: EngineSource):
        super().__init__()
        self.auth = auth
        self.engine_source = engine_source

    def getChild(self, path: bytes, request):
        refused = self.auth.check(request, "staff:read")
        if refused is not None:
            return Refusal(*refused)
        return Member(self, path.decode("utf-8", "replace"))


class Member(resource.Resource):
    def __init__(self, parent: Staff, opid: str):
        super().__init__()
        self.parent = parent
        self.opid = opid

    def getChild(self, path: bytes, request):
        if path == b"recent":
            return Recent(self)
        return Refusal(404, "no such resource")


class Recent(resource.Resource):
    isLeaf = True

    def __init__(self, member: Member):
        super().__init__()
        self.member = member

    def render_GET(self, request):
        text = (request.args.get(b"days") or [b"7"])[0].decode("ascii", "replace")
        if not text.isdigit() or not 1 <= int(text) <= staff.MAX_DAYS:
            return Refusal(400, f"days: 1 to {staff.MAX_DAYS}").render(request)
        return answer_later(request, self._answer(int(text)))

    async def _answer(self, days: int) -> Answer:
        try:
            engine = await self.member.parent.engine_source()
            return 200, await staff.recent(engine, self.member.opid, days, time.time())
        except BackofficeUnavailable as e:
            return 503, {"error": str(e)}
        except UNREACHABLE as e:
            return 503, {"error": f"back office: cannot reach it: {type(e).__name__}"}
