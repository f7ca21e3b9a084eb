"""The cards an operator has open or served lately, so a form can name a card without the page
holding its number.

The ledger keeps no card number, only its key id (a hash, gateway/ledger/cards.card_id), and
the journal only the masked number. A page that acts on a card after it was opened (the staff
dashboard's earn and claim forms, the confirmation step of online entry, "reopen" in recent
interactions) carries the card's key id in a hidden field; the number itself waits here, in
Redis, sealed with the portal's key (gateway/security/secretbox.py, kept apart from Redis): a
Redis dump holds no usable number, and the browser, its history and its cache never see one.

One hash per operator, `portal:rc:<operator id>`, field the card's key id, value the sealed
number; it lives SHELF_DAYS after the operator's last card (the 7 days of recent interactions,
and one more), so a card can be reopened for as long as it is listed. An operator finds only
the cards on their own shelf: a key id typed into a form by hand opens nothing else.
"""

from __future__ import annotations

from typing import Any

from gateway.ledger.cards import card_id
from gateway.security.secretbox import SecretBox, SecretBoxError

SHELF_DAYS = 8
KEY_ID_LENGTH = 32  # gateway/ledger/cards.card_id


def _key(operator_id: int) -> str:
    return f"portal:rc:{operator_id}"


async def remember(client: Any, box: SecretBox, operator_id: int, number: str) -> str:
    """Put the card on the operator's shelf; its key id, which forms carry."""
    cid = card_id(number)
    key = _key(operator_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, cid, box.seal(number))
        pipe.expire(key, SHELF_DAYS * 86400)
        await pipe.execute()
    return cid


async def recall(client: Any, box: SecretBox, operator_id: int, cid: str) -> str | None:
    """The number of a card on the operator's shelf, or None (not theirs, or gone)."""
    if len(cid) != KEY_ID_LENGTH or not cid.isalnum():
        return None
    sealed = await client.hget(_key(operator_id), cid)
    if sealed is None:
        return None
    try:
        number = box.open(sealed.decode("ascii"))
    except SecretBoxError:  # sealed under an earlier portal key
        return None
    return number if card_id(number) == cid else None
