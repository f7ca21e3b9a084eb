"""PIN hashing. A PIN is stored only as a salted hash and compared inside the card script.

The salt is unique per card and derived from the card number, so the gateway can hash the PIN
it was given without first reading the card: the clear PIN never leaves this process (it is
not in any Redis command, log or slow log), and the script compares hashes while counting tries
atomically. PBKDF2 makes each guess cost something; with 4-digit PINs the real defence is the
try counter (HOST-SPEC: locked with 75 after the program's number of wrong tries).
"""

from __future__ import annotations

import hashlib

ITERATIONS = 1000  # ~0.3 ms per hash: bounded cost on the event loop, per PIN-checked request
_SALT_DOMAIN = b"tillgate-pin-salt:"


def pin_hash(card: str, pin: str) -> str:
    salt = hashlib.sha256(_SALT_DOMAIN + card.encode()).digest()[:16]
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, ITERATIONS).hex()


def pin_well_formed(pin: str | None, length: int) -> bool:
    return pin is not None and len(pin) == length and pin.isdigit()
