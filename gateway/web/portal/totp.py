"""RFC 6238 time-based codes (pyotp): new secrets, the enrolment QR code (segno, inline SVG, no
JavaScript), and which time step a code belongs to, so that a code used once is refused the
second time (gateway/backoffice/operators.py, use_totp_step).

A code is accepted for the current 30-second step and the one before and after it (clocks of
phones drift); each step is taken at most once, and never one older than the last taken.
"""

from __future__ import annotations

import hmac

import pyotp
import segno

ISSUER = "tillgate"
STEP = 30
WINDOW = 1  # steps either side of now


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline <svg> element (dark on light, a quiet zone around it)."""
    svg: str = segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff",
                                                       title="QR code for your authenticator")
    return svg


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code `code` is, within WINDOW of `now`; None when none is."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // STEP)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # compare every candidate, so the time taken does not say which step matched
        if hmac.compare_digest(totp.at(step * STEP), code) and found is None:
            found = step
    return found
