"""The routes of the operator and club pages (docs/portal.md "Operators", "Clubs"): head office
and merchant managers; staff are refused (403). Who may act on whom is checked inside each
handler (gateway/web/portal/operatorrules.py)."""

from __future__ import annotations

from gateway.web.portal import clubpages, operatorpages
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Route

MANAGERS = ("head_office", "merchant_manager")

ROUTES = {
    ("GET", "operators"): Route(operatorpages.listing, IN, MANAGERS),
    ("POST", "operators/add"): Route(operatorpages.add, IN, MANAGERS),
    ("GET", "operators/edit"): Route(operatorpages.edit, IN, MANAGERS),
    ("POST", "operators/status"): Route(operatorpages.status, IN, MANAGERS),
    ("POST", "operators/reset"): Route(operatorpages.reset, IN, MANAGERS),
    ("POST", "operators/role"): Route(operatorpages.role, IN, MANAGERS),
    ("POST", "operators/clubs"): Route(operatorpages.clubs, IN, MANAGERS),
    ("GET", "clubs"): Route(clubpages.listing, IN, MANAGERS),
}
