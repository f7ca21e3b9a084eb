"""PIN blocks under terminal keys (ISO 9564-1), with the `cryptography` package.

Field 52 carries an ISO 9564 format 0 PIN block: (0, PIN length, PIN, F fill) XOR (0000, the 12
PAN digits left of the check digit), 8 bytes. A terminal with a key (config
`[[security.pin_keys]]`, the key from a file or the environment, never the config text) sends it
encrypted:

  tdes  TDES-ECB of the format 0 block, 2-key (16 bytes: K1 K2 K1) or 3-key (24 bytes)
  aes   ISO 9564 format 4, AES's own block format (16 bytes): PIN field (4, length, PIN, A fill
        to 16 nibbles, 8 random bytes) and PAN field (PAN length - 12, the PAN, 0 fill);
        block = E(E(PIN field) XOR PAN field), so decryption is D(D(block) XOR PAN field)

A terminal without a key sends the clear format 0 block (protocols.isomap.clear_pin). The clear
PIN lives only in `Request.pin` (never in a repr, a log line or Redis: gateway.ledger.pins
hashes it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 keeps TDES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore

from gateway.config.security import PinKeyConfig
from protocols.isobuild import pin_block as format0_block
from protocols.isomap import clear_pin
from protocols.model import Request


@dataclass(frozen=True)
class PinKey:
    algorithm: str  # tdes | aes
    key: bytes

    def __repr__(self) -> str:  # key material never in a repr
        return f"PinKey({self.algorithm}, {8 * len(self.key)} bits)"

    def _cipher(self) -> Cipher:
        if self.algorithm == "aes":
            return Cipher(algorithms.AES(self.key), modes.ECB())
        # a 2-key TDES key K1 K2 is the 3-key K1 K2 K1 (cryptography wants the 24 bytes)
        key = self.key + self.key[:8] if len(self.key) == 16 else self.key
        return Cipher(TripleDES(key), modes.ECB())

    def encrypt(self, data: bytes) -> bytes:
        e = self._cipher().encryptor()
        return e.update(data) + e.finalize()

    def decrypt(self, data: bytes) -> bytes:
        d = self._cipher().decryptor()
        return d.update(data) + d.finalize()

    # -- the block formats -------------------------------------------------------------------

    def pin_from_block(self, block_hex: str, pan: str) -> str | None:
        """The PIN, or None when the block does not decrypt to a well-formed block for this
        card (a wrong key or card: the request then counts as a wrong PIN). ValueError when
        `block_hex` is not hex of the algorithm's block size."""
        raw = bytes.fromhex(block_hex)
        if self.algorithm == "tdes":
            if len(raw) != 8:
                raise ValueError("a TDES PIN block is 16 hexadecimal characters")
            return clear_pin(self.decrypt(raw).hex().upper(), pan)
        if len(raw) != 16:
            raise ValueError("an ISO 9564 format 4 PIN block is 32 hexadecimal characters")
        return format4_pin(self.decrypt(xor(self.decrypt(raw), format4_pan_field(pan))))

    def block_for(self, pin: str, pan: str, fill: bytes | None = None) -> str:
        """The till's side (tests, the simulator): the encrypted block of `pin` for `pan`."""
        if self.algorithm == "tdes":
            return self.encrypt(bytes.fromhex(format0_block(pin, pan))).hex().upper()
        pin_field = format4_pin_field(pin, os.urandom(8) if fill is None else fill)
        return self.encrypt(xor(self.encrypt(pin_field), format4_pan_field(pan))).hex().upper()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def format4_pin_field(pin: str, fill: bytes) -> bytes:
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4 to 12 digits")
    if len(fill) != 8:
        raise ValueError("format 4 takes 8 bytes of random fill")
    return bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A")) + fill


def format4_pan_field(pan: str) -> bytes:
    """M (PAN length - 12, 0 for shorter PANs, which are left-padded with 0 to 12 digits), the
    PAN, then 0 fill to 32 nibbles."""
    digits = pan if len(pan) >= 12 else pan.rjust(12, "0")
    if not digits.isdigit() or len(digits) > 19:
        raise ValueError("a PAN is up to 19 digits")
    return bytes.fromhex(f"{len(digits) - 12:X}{digits}".ljust(32, "0"))


def format4_pin(field: bytes) -> str | None:
    nibbles = field[:8].hex().upper()
    length = int(nibbles[1], 16)
    if nibbles[0] != "4" or not 4 <= length <= 12:
        return None
    pin, padding = nibbles[2:2 + length], nibbles[2 + length:]
    if not pin.isdigit() or padding != "A" * len(padding):
        return None
    return pin


class PinKeys:
    """The configured keys: a terminal's own key, else its merchant's."""

    def __init__(self, keys: tuple[PinKeyConfig, ...] = ()):
        self.by_terminal: dict[str, PinKey] = {}
        self.by_merchant: dict[str, PinKey] = {}
        for k in keys:
            key = PinKey(k.algorithm, bytes.fromhex(k.key.text()))
            if k.terminal:
                self.by_terminal[k.terminal] = key
            elif k.merchant:
                self.by_merchant[k.merchant] = key

    def __bool__(self) -> bool:
        return bool(self.by_terminal or self.by_merchant)

    def key_for(self, terminal: str, merchant: str) -> PinKey | None:
        return self.by_terminal.get(terminal) or self.by_merchant.get(merchant)

    def decode(self, req: Request) -> None:
        """Where the terminal has a key, replace what the codec read from field 52 as a clear
        block by the PIN decrypted under the key (None, a wrong PIN, if it does not decrypt)."""
        if not req.pin_block or not req.card:
            return
        key = self.key_for(req.terminal, req.merchant)
        if key is None:
            return
        try:
            req.pin = key.pin_from_block(req.pin_block, req.card)
        except ValueError:
            req.pin = None
