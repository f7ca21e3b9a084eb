"""Who may manage whom in the portal's operator pages (gateway/web/portal/operatorpages.py).

Head office manages every operator and gives any role. A merchant manager manages the staff of
their own merchant only: never another merchant's people, never a head-office account or
another manager, and never gives a role above staff (so nobody climbs by a manager's hand).
Nobody changes their own account here (*My account* is for that): head office cannot lock
itself out by a slip of the mouse. Clubs are given within the staff member's merchant: a club
is offered only if the merchant is in it.
"""

from __future__ import annotations

from gateway.backoffice.operators import ROLES, Operator
from gateway.config.model import Config


def may_manage(actor: Operator, target: Operator) -> bool:
    if actor.id == target.id:
        return False
    if actor.role == "head_office":
        return True
    return (actor.role == "merchant_manager" and target.role == "staff"
            and target.merchant == actor.merchant)


def roles_to_give(actor: Operator) -> tuple[str, ...]:
    return ROLES if actor.role == "head_office" else ("staff",)


def merchants_to_give(actor: Operator, config: Config) -> tuple[str, ...]:
    if actor.role == "head_office":
        return tuple(config.merchants)
    return (actor.merchant,) if actor.merchant else ()


def grant_problem(actor: Operator, config: Config, role: str, merchant: str | None
                  ) -> str | None:
    """Why `actor` may not give this role and merchant, or None."""
    if role not in roles_to_give(actor):
        return f"you may not give the role {role[:20].replace('_', ' ')!r}"
    if merchant and merchant not in merchants_to_give(actor, config):
        return f"you may not give the merchant {merchant[:20]!r}"
    return None


def clubs_for(config: Config, merchant: str | None) -> tuple[str, ...]:
    """The clubs a staff member of `merchant` may belong to: those with the merchant in them."""
    if not merchant:
        return ()
    return tuple(name for name, club in config.clubs.items() if merchant in club.merchants)
