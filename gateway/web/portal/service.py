"""The portal's dependencies, and its `/ui/` resource.

`Portal` holds what every page needs (gateway/web/service.py: the config, clock, store,
Processor, the back office's engine, mail) and the portal's own: session lifetimes, login
limits, the TOTP secret box, alerts. gateway/app.py mounts `portal_resource(portal)` at `/ui/`
on the admin listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.security.alerts.record import Alert
from gateway.security.secretbox import SecretBox
from gateway.web.portal.limits import LoginLimits
from gateway.web.portal.pages import routes
from gateway.web.portal.render import Renderer
from gateway.web.portal.sessions import ANON, IN, PASSWORD, Session, Sessions
from gateway.web.portal.web import COOKIE, SECURE_COOKIE, PortalResource
from gateway.web.service import NotStarted, SiteService

log = logging.getLogger(__name__)

ANON_LIFETIME = 30 * 60  # a login form left open this long must be opened again


class Portal(SiteService):
    cookie = COOKIE
    secure_cookie = SECURE_COOKIE

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
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

    def sessions(self) -> Sessions:
        return Sessions(self.redis())

    def limits(self) -> LoginLimits:
        return LoginLimits(self.redis(), self.config.portal)

    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.for_config(self.config)
        return self._box

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


__all__ = ["NotStarted", "Portal", "portal_resource"]
