"""The member page's dependencies, and its `/m/` resource.

`Members` holds what every member page needs (gateway/web/service.py: the config, clock, store,
Processor for the sign-in's PIN check, rate limits and alerts, the back office's engine, mail),
and the member page's session lifetimes. gateway/app.py mounts
`members_resource(members)` (gateway/web/members/pages.py) at `/m/` on the admin listener.
"""

from __future__ import annotations

from gateway.web.service import NotStarted, SiteService
from gateway.web.sessions import IN, Session, Sessions

SESSION_PREFIX = "member:s:"
CODE = "code"  # the session's stage between an e-mailed code's request and its entry
FORM_LIFETIME = 30 * 60  # a sign-in form left open this long must be opened again


class Members(SiteService):
    cookie = "tg_member"
    secure_cookie = "__Host-tg_member"

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

    def sessions(self) -> Sessions:
        return Sessions(self.redis(), SESSION_PREFIX)


__all__ = ["Members", "NotStarted"]
