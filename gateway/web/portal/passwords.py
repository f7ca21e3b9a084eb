"""Operators' passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile: 64 MiB, 3 passes, 4 lanes), the rules a new one must meet, and a verification that
costs the same whether or not the account exists.

Hashing takes some 50 ms of CPU and 64 MiB: callers on the reactor run it in a worker thread
(asyncio.to_thread), so a login never stalls the tills' traffic.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # a megabyte "password" must not buy a megabyte of hashing work

_hasher = PasswordHasher()
# Verified against for an unknown e-mail or an account without a password, so that a wrong
# e-mail costs what a wrong password costs: the answer's timing tells nobody who has an account.
_DUMMY = _hasher.hash("tillgate: no such operator, compared for timing only")


def password_problem(password: str, email: str = "") -> str | None:
    """What is wrong with a new password, or None. Length over composition rules (NIST SP
    800-63B): at least 12 characters, not the e-mail address."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if email and password.strip().lower() == email.strip().lower():
        return "the password must not be the e-mail address"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash; with no hash (unknown account, no
    password set yet) the dummy is verified anyway and the answer is False."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH + 1]  # still hashed (same cost), never matches
    try:
        ok = _hasher.verify(stored or _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored is not None
