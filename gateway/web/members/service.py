"""The member page's dependencies, and its `/m/` resource.

`Members` holds what every member page needs: the config (a reload points it at the new one, as
it does the portal), the clock (injectable: tests move it), the store, the Processor (the
sign-in's PIN check and rate limits, and the alert service), the back office's engine (the
process's one: gateway/backoffice/shared.py), and the one mail path. gateway/app.py mounts
`members_resource(members)` (gateway/web/members/pages.py) at `/m/` on the admin listener.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.model import Config
from gateway.issuance.mailer import new_message, send_email
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.web.sessions import IN, Session, Sessions

log = logging.getLogger(__name__)

COOKIE = "tg_member"
SECURE_COOKIE = "__Host-tg_member"  # with TLS: Secure, Path=/, no Domain, enforced by browsers
SESSION_PREFIX = "member:s:"
CODE = "code"  # the session's stage between an e-mailed code's request and its entry
FORM_LIFETIME = 30 * 60  # a sign-in form left open this long must be opened again


class NotStarted(RuntimeError):
    pass


class Members:
    def __init__(self, config: Config, store_source: Callable[[], Store | None],
                 processor_source: Callable[[], Processor | None],
                 engine_source: Callable[[], Awaitable[AsyncEngine]],
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store_source = store_source
        self.processor_source = processor_source
        self.engine_source = engine_source
        self.clock = clock
        self.tls = config.http.tls is not None  # the listener's TLS needs a restart to change
        self.cookie_name = SECURE_COOKIE if self.tls else COOKIE

    def timed_out(self, session: Session, now: float) -> bool:
        cfg = self.config.members
        if session.stage == IN:
            return (now - session.seen > cfg.idle_minutes * 60
                    or now - session.created > cfg.absolute_minutes * 60)
        lifetime = cfg.code_minutes * 60 if session.stage == CODE else FORM_LIFETIME
        return now - session.created > lifetime

    def lifetime(self, stage: str) -> int:
        cfg = self.config.members
        return {IN: cfg.absolute_minutes * 60, CODE: cfg.code_minutes * 60}.get(stage,
                                                                               FORM_LIFETIME)

    def store(self) -> Store:
        store = self.store_source()
        if store is None:
            raise NotStarted("the store is not started")
        return store

    def processor(self) -> Processor:
        processor = self.processor_source()
        if processor is None:
            raise NotStarted("the processor is not started")
        return processor

    def sessions(self) -> Sessions:
        return Sessions(self.store().client, SESSION_PREFIX)

    def redis(self) -> Any:
        return self.store().client

    async def engine(self) -> AsyncEngine:
        return await self.engine_source()

    async def send_mail(self, to: str, subject: str, body: str) -> None:
        """One message through the one mail path (SMTP, or the maildir of the embedded
        default), in a worker thread; MailError when it was not taken."""
        message = new_message(self.config.email, [to], subject, body)
        await asyncio.to_thread(send_email, self.config.email, message)


__all__ = ["Members", "NotStarted"]
