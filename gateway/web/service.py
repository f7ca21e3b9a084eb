"""What both sites' pages reach their dependencies through (the portal's `Portal`, the member
page's `Members` extend it): the config (a config reload points it at the new one), the clock
(injectable: tests move it), the store, the Processor, the back office's engine (the process's
one, gateway/backoffice/shared.py: opened at the first page that needs it, so a gateway whose
SQL is down still starts and serves tills; the page answers 503 meanwhile), the one mail path,
and the session cookie's name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.model import Config
from gateway.issuance.mailer import new_message, send_email
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store


class NotStarted(RuntimeError):
    """The store or the Processor is not started yet (the gateway is starting or stopping)."""


class SiteService:
    cookie = "tg_site"  # the session cookie's name; with TLS, `secure_cookie`
    secure_cookie = "__Host-tg_site"  # Secure, Path=/, no Domain: enforced by browsers

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
        self.cookie_name = self.secure_cookie if self.tls else self.cookie

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

    def redis(self) -> Any:
        return self.store().client

    async def engine(self) -> AsyncEngine:
        """The back office's engine; BackofficeUnavailable while it cannot be opened."""
        return await self.engine_source()

    async def send_mail(self, to: str, subject: str, body: str) -> None:
        """One message through the one mail path (SMTP, or the maildir of the embedded
        default), in a worker thread; MailError when it was not taken."""
        message = new_message(self.config.email, [to], subject, body)
        await asyncio.to_thread(send_email, self.config.email, message)
