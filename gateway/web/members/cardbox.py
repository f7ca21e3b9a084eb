"""The signed-in card's number, kept in the member's session sealed under a key only the
browser holds.

The store never holds a clear card number (keys hold a hash of it: gateway/ledger/cards.py),
and a member session in Redis must not either. The browser's cookie is the session's 256-bit
random id; Redis keys the session by the id's SHA-256 (gateway/web/sessions.py). The number is
sealed (Fernet: AES-128-CBC and HMAC-SHA256) under a key derived from the id itself, so a copy
of Redis holds neither a live session nor a card number, and needs no key file.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

_DOMAIN = b"tillgate-member-card:"


def _fernet(sid: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_DOMAIN + sid.encode()).digest()))


def seal(sid: str, card: str) -> str:
    return _fernet(sid).encrypt(card.encode()).decode()


def unseal(sid: str, sealed: str) -> str | None:
    """The number, or None when the seal is not this session's."""
    try:
        return _fernet(sid).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None
