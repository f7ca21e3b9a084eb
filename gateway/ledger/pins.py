"""PIN hashing. A PIN is stored only as a salted hash and compared inside the card script.

The salt is unique per card and derived from the card number, so the gateway can hash the PIN
it was given without first reading the card: the clear PIN never leaves this process (it is
not in any Redis command, log or slow log), and the script compares hashes while counting tries
atomically. One keyed BLAKE2b, not a slow KDF, on purpose: a 4-digit PIN has 10^4 candidates,
so iterations would not stop anyone holding the database and would cost the event loop on every
PIN-checked request. What protects a PIN online is the try counter (HOST-SPEC: locked with 75
after the program's number of wrong tries); offline, the card number itself is not in the store
(keys hold a hash of it), and without it the salt cannot be derived.
"""

from __future__ import annotations

import hashlib

_SALT_DOMAIN = b"tillgate-pin-salt:"
_PERSON = b"tillgate-pin"


def pin_hash(card: str, pin: str) -> str:
    salt = hashlib.sha256(_SALT_DOMAIN + card.encode()).digest()
    return hashlib.blake2b(pin.encode(), key=salt, person=_PERSON, digest_size=32).hexdigest()
