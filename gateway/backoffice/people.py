"""What an operator account may be, with no SQL in it: the roles, second factors and statuses,
the login name's normal form, and the rule tying a role to a merchant. Kept apart from
operators.py (the queries) so that `tillgate`'s parser offers these choices without loading
SQLAlchemy (every command's start would pay for it).
"""

from __future__ import annotations

ROLES = ("head_office", "merchant_manager", "staff")
SECOND_FACTORS = ("totp", "email")
STATUSES = ("active", "disabled")


def normal_email(email: str) -> str:
    """The login name: e-mail addresses are one account whatever their case or spaces."""
    return email.strip().lower()


def role_problem(role: str, merchant: str | None) -> str | None:
    """What is wrong with this role and merchant together, or None."""
    if role not in ROLES:
        return f"role: one of {', '.join(ROLES)}"
    if role == "head_office" and merchant:
        return "a head-office operator belongs to no merchant"
    if role != "head_office" and not merchant:
        return f"the role {role} needs a merchant"
    return None
