"""Admin HTTP: a terminal's disabled flag (set by a disable_terminal rule,
gateway/security/rules.py).

  GET  /v1/terminals/<id>          {"terminal", "merchant", "disabled"}  scope terminals:read
  POST /v1/terminals/<id>/enable   re-enable after a velocity rule       scope terminals:write
  POST /v1/terminals/<id>/disable  stop a terminal by hand (58)          scope terminals:write
"""

from __future__ import annotations

import logging

from twisted.web import resource

from gateway.admin.jsonio import Answer, StoreResource, answer_later
from gateway.ledger.store import Store
from gateway.security import rules
from gateway.security.tokens import Refusal

log = logging.getLogger(__name__)


class Terminals(StoreResource):
    def getChild(self, path: bytes, request):
        # the scope first: without it, not even whether a terminal exists is told
        scope = "terminals:write" if request.method == b"POST" else "terminals:read"
        refused = self.auth.check(request, scope)
        if refused is not None:
            return Refusal(*refused)
        terminal = path.decode("ascii", "replace")
        merchant = self.config.merchant_of_terminal(terminal)
        if merchant is None:
            return Refusal(404, f"no terminal {terminal!r}")
        return Terminal(self, terminal, merchant.id)


class Terminal(resource.Resource):
    def __init__(self, parent: Terminals, terminal: str, merchant: str):
        super().__init__()
        self.parent = parent
        self.terminal = terminal
        self.merchant = merchant

    def getChild(self, path: bytes, request):
        if path in (b"enable", b"disable"):
            return Switch(self, path == b"enable")
        return Refusal(404, "no such action")

    def render_GET(self, request):
        return self.answer(request, None)

    def answer(self, request, enable: bool | None):
        store = self.parent.store_source()
        if store is None:
            return Refusal(503, "store not started").render(request)
        return answer_later(request, self._act(store, enable))

    async def _act(self, store: Store, enable: bool | None) -> Answer:
        if enable is not None:
            changed = await rules.set_terminal_enabled(store, self.merchant, self.terminal,
                                                       enable)
            log.warning("operator %s terminal %s (%s)", "enabled" if enable else "disabled",
                        self.terminal, "changed" if changed else "no change")
        disabled = await rules.terminal_disabled(store, self.merchant, self.terminal)
        return 200, {"terminal": self.terminal, "merchant": self.merchant, "disabled": disabled}


class Switch(resource.Resource):
    isLeaf = True

    def __init__(self, terminal: Terminal, enable: bool):
        super().__init__()
        self.terminal = terminal
        self.enable = enable

    def render_POST(self, request):
        return self.terminal.answer(request, self.enable)
