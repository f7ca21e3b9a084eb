"""The portal's dependencies, and its `/ui/` resource.

`Portal` holds what every page needs: the config (a config reload points it at the new one, as
it does the admin resources), the clock, the Redis sessions and limits, the back office's
engine (the process's one engine, gateway/backoffice/shared.py: opened and migrated at the first
page that needs it, so a gateway whose SQL is down still starts and serves tills; the portal
answers 503 meanwhile and tries again at the next request), the TOTP secret box, mail and
alerts. gateway/app.py mounts `portal_resource(portal)` at `/ui/` on the admin listener.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.model import Config
from gateway.issuance.mailer import new_message, send_email
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.security.alerts.record import Alert
from gateway.security.secretbox import SecretBox
from gateway.web.portal.limits import LoginLimits
from gateway.web.portal.pages import routes
from gateway.web.portal.render import Renderer
from gateway.web.portal.sessions import ANON, IN, PASSWORD, Session, Sessions
from gateway.web.portal.web import COOKIE, SECURE_COOKIE, PortalResource

log = logging.getLogger(__name__)

ANON_LIFETIME = 30 * 60  # a login form left open this long must be opened again


class StoreNotStarted(RuntimeError):
    pass


class Portal:
    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 processor_source: Callable[[], Processor | None],
                 engine_source: Callable[[], Awaitable[AsyncEngine]],
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store_source = store_source
        self.processor_source = processor_source
        self.engine_source = engine_source
        self.clock = clock
        # The listener's TLS needs a restart to change (gateway/config/diff.py): fixed here.
        self.tls = config.http.tls is not None
        self.cookie_name = SECURE_COOKIE if self.tls else COOKIE
        self._box: SecretBox | None = None
        # The e-card queue's wake (gateway/app.py): an order is sent now, not at the next poll.
        self.wake_ecards: Callable[[], None] = lambda: None

    # -- lifetimes ----------------------------------------------------------------------------

    @property
    def idle(self) -> int:
        return self.config.portal.idle_minutes * 60

    @property
    def absolute(self) -> int:
        return self.config.portal.absolute_hours * 3600

    @property
    def second_step_lifetime(self) -> int:
        return self.config.portal.code_minutes * 60

    def timed_out(self, session: Session, now: float) -> bool:
        if session.stage == IN:
            return now - session.seen > self.idle or now - session.created > self.absolute
        lifetime = self.second_step_lifetime if session.stage == PASSWORD else ANON_LIFETIME
        return now - session.created > lifetime

    def lifetime(self, stage: str) -> int:
        return {ANON: ANON_LIFETIME, PASSWORD: self.second_step_lifetime,
                IN: self.absolute}[stage]

    # -- what pages use ---------------------------------------------------------------------

    def _client(self) -> Any:
        store = self.store_source()
        if store is None:
            raise StoreNotStarted("the store is not started")
        return store.client

    def store(self) -> Store:
        store = self.store_source()
        if store is None:
            raise StoreNotStarted("the store is not started")
        return store

    def sessions(self) -> Sessions:
        return Sessions(self._client())

    def limits(self) -> LoginLimits:
        return LoginLimits(self._client(), self.config.portal)

    def redis(self) -> Any:
        return self._client()

    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.for_config(self.config)
        return self._box

    async def engine(self) -> AsyncEngine:
        """The back office's engine; BackofficeUnavailable while it cannot be opened."""
        return await self.engine_source()

    async def send_mail(self, to: str, subject: str, body: str) -> None:
        """One message through the one mail path (SMTP, or the maildir of the embedded
        default), in a worker thread; MailError when it was not taken."""
        message: EmailMessage = new_message(self.config.email, [to], subject, body)
        await asyncio.to_thread(send_email, self.config.email, message)

    async def alert(self, name: str, value: str, detail: str, dedup_seconds: int) -> None:
        """An alert through the gateway's alert service (log, webhook, e-mail sinks)."""
        processor = self.processor_source()
        if processor is None:
            log.warning("portal alert %s not raised (no processor): %s", name, detail)
            return
        now = self.clock()
        alert = Alert(rule=name, scope="operator", value=value, event=name, action="alert",
                      window=dedup_seconds, window_start=int(now), count=1, amount=0,
                      max_count=0, max_amount=0, terminal="", merchant="", card="",
                      time=int(now), detail=detail)
        await processor.alerts.raise_alert(alert, value, dedup_seconds)


def portal_resource(portal: Portal) -> PortalResource:
    return PortalResource(portal, routes(), Renderer())


__all__ = ["Portal", "StoreNotStarted", "portal_resource"]
