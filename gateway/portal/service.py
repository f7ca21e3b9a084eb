"""The portal's dependencies and its place in the gateway's service tree.

`Portal` holds what every page needs: the config, the clock, the Redis sessions and limits, the
back office's engine (opened and migrated at the first page that needs it, so a gateway whose
SQL is down still starts and serves tills; the portal answers 503 meanwhile and tries again at
the next request), the TOTP secret box, mail and alerts. `PortalService` closes the engine at
shutdown. The resource is mounted at `/ui/` on the admin listener by gateway/app.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.backoffice.db import create_engine, database_url, describe
from gateway.backoffice.migrate import upgrade
from gateway.config.model import Config
from gateway.issuance.mailer import new_message, send_email
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.portal.limits import LoginLimits
from gateway.portal.pages import routes
from gateway.portal.render import Renderer
from gateway.portal.secretbox import SecretBox
from gateway.portal.sessions import ANON, IN, PASSWORD, Session, Sessions
from gateway.portal.web import COOKIE, SECURE_COOKIE, PortalResource
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.record import Alert
from gateway.services import AsyncService

log = logging.getLogger(__name__)

ANON_LIFETIME = 30 * 60  # a login form left open this long must be opened again


class StoreNotStarted(RuntimeError):
    pass


class Portal:
    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 processor_source: Callable[[], Processor | None],
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store_source = store_source
        self.processor_source = processor_source
        self.clock = clock
        self.tls = config.http.tls is not None
        self.cookie_name = SECURE_COOKIE if self.tls else COOKIE
        self._engine: AsyncEngine | None = None
        self._engine_lock = asyncio.Lock()
        self._box: SecretBox | None = None

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
        """The back office's engine, opened (and migrated) once; BackofficeUnavailable while
        it cannot be, tried again at the next call."""
        if self._engine is not None:
            return self._engine
        async with self._engine_lock:
            if self._engine is None:
                url = database_url(self.config)
                engine = create_engine(url)
                try:
                    await upgrade(engine)
                except UNREACHABLE as e:
                    await engine.dispose()
                    raise BackofficeUnavailable(f"back office {describe(url)}: {e}") from None
                self._engine = engine
        return self._engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

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


class PortalService(AsyncService):
    """Builds the `/ui/` resource; at stop, closes the back office's engine if it was opened."""

    name = "portal"

    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 processor_source: Callable[[], Processor | None]):
        self.portal = Portal(config, store_source, processor_source)
        self.resource = PortalResource(self.portal, routes(), Renderer())

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await deferred_from_coro(self.portal.close())


__all__ = ["BackofficeUnavailable", "Portal", "PortalService", "StoreNotStarted"]
