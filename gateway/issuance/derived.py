"""Random draws that can be drawn again: the same secret and label give the same draws.

`DerivedDraws` has the two functions of `secrets` that card numbers and PINs are drawn with
(`choice`, `randbelow`, see protocols.carddata.generate_card_number), taken from an
HMAC-SHA256 stream keyed by a server secret. Issuing over HTTP uses it so that a client that
lost an answer and asks again gets the very same numbers and PINs, although no whole number or
PIN is ever stored (gateway/issuance/realtime.py).

Without the secret the draws cannot be told from random ones; with it and the label, anyone can
draw them again, so the secret is kept like a PIN key (docs/security.md). The stream and the
rejection sampling are written out here rather than taken from `random`, whose algorithms may
change between Python versions: a retry after an upgrade must still find the same cards.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
MIN_SECRET_BYTES = 32


class DerivedDraws:
    """`choice` and `randbelow`, uniform, from HMAC-SHA256(secret, label || block number)."""

    def __init__(self, secret: bytes, label: str):
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the secret must have at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._label = label.encode() + b"\0"
        self._block = 0
        self._buffer = b""

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            block = self._block.to_bytes(8, "big")
            self._buffer += hmac.new(self._secret, self._label + block, hashlib.sha256).digest()
            self._block += 1
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def randbelow(self, exclusive_upper_bound: int, /) -> int:
        """Uniform in [0, n): draw one byte more than n needs and reject the biased top."""
        n = exclusive_upper_bound
        if n <= 0:
            raise ValueError("the upper bound must be positive")
        width = (n.bit_length() + 7) // 8 + 1
        span = 256 ** width
        limit = span - span % n
        while True:
            value = int.from_bytes(self._take(width), "big")
            if value < limit:
                return value % n

    def choice(self, seq: Sequence[T], /) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randbelow(len(seq))]
