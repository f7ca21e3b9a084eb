"""Portal sessions: gateway/web/sessions.py (shared with the member page), under their old name."""

from gateway.web.sessions import ANON, ID_BYTES, IN, PASSWORD, Session, Sessions, new_token

__all__ = ["ANON", "ID_BYTES", "IN", "PASSWORD", "Session", "Sessions", "new_token"]
