"""The card an operator has looked up, carried from page to page without its number showing,
and who may do what to it.

A card page's forms carry a *reference* to the card, never the number: the number sealed
with the portal's key (gateway/security/secretbox.py, Fernet) together with the operator's
id. So the number is not in a URL, not in the page's markup and not in Redis; a reference is
good only for the operator it was made for and for `REF_SECONDS`, and a tampered one does not
open.

Card actions per role (docs/portal.md, "Card actions"), on cards of programs the operator may
see at all (cardlookup.may_see: the program's club):

  head office, merchant managers  every action
  staff                           suspend only: stopping a card they think is misused is
                                  safe (a manager reinstates it); everything else changes
                                  value or ends a card, and is a manager's decision
"""

from __future__ import annotations

from gateway.backoffice.operators import Operator
from gateway.security.secretbox import SecretBox, SecretBoxError

REF_SECONDS = 60 * 60  # a card page left open longer is looked up again
# action -> what the button says; the order they are offered in
ACTIONS = {
    "suspend": "Suspend", "reinstate": "Reinstate", "unlock": "Unlock PIN",
    "rollback": "Roll back the last transaction", "transfer": "Transfer the balance",
    "lost": "Mark lost", "close": "Close",
}
STAFF_ACTIONS = frozenset({"suspend"})


def actions_for(operator: Operator) -> list[str]:
    """The actions the operator's role may take on a card they may see."""
    if operator.role == "staff":
        return [a for a in ACTIONS if a in STAFF_ACTIONS]
    return list(ACTIONS)


def journal_name(operator: Operator) -> str:
    """Who did it, in the journal (entry terminal and opid) and the logs."""
    return f"portal:{operator.id}"


def seal_card(box: SecretBox, operator: Operator, number: str) -> str:
    return box.seal(f"{operator.id}:{number}")


def open_card(box: SecretBox, operator: Operator, ref: str) -> str | None:
    """The number a reference holds, if it is this operator's and recent; else None."""
    if not ref or len(ref) > 1000:
        return None
    try:
        owner, _, number = box.open(ref, ttl=REF_SECONDS).partition(":")
    except SecretBoxError:
        return None
    return number if owner == str(operator.id) and number else None
