"""Encryption at rest of the operators' TOTP secrets (Fernet: AES-128-CBC with HMAC-SHA256).

The key is `[portal] key_file`, or `<data_dir>/portal.key`, made (mode 0600) the first time it
is needed. Kept apart from the back office's database, a copy of that database alone does not
hold anyone's second factor. Losing the key means every operator enrols again
(`tillgate users reset-2fa`), nothing worse.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gateway.config.model import Config

KEY_FILE = "portal.key"


class SecretBoxError(RuntimeError):
    pass


def key_path(config: Config) -> Path:
    return Path(config.portal.key_file) if config.portal.key_file else (
        Path(config.data_dir) / KEY_FILE)


class SecretBox:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)
        self._key = key

    def subkey(self, label: str) -> bytes:
        """A secret of its own for `label`, derived from the key (HMAC-SHA256): one key file,
        many uses that cannot stand in for each other."""
        return hmac.new(self._key, b"tillgate-portal:" + label.encode(), hashlib.sha256).digest()

    @classmethod
    def for_config(cls, config: Config) -> SecretBox:
        path = key_path(config)
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            key = _create_key(path)
        except OSError as e:
            raise SecretBoxError(f"portal key {path}: {e.strerror}") from None
        try:
            return cls(key)
        except ValueError:
            raise SecretBoxError(f"portal key {path}: not a Fernet key (32 bytes, "
                                 f"url-safe base64)") from None

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str, ttl: int | None = None) -> str:
        """The sealed text; with `ttl`, only if sealed at most that many seconds ago."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii"), ttl=ttl).decode()
        except (InvalidToken, ValueError):
            raise SecretBoxError("a sealed secret does not open with this portal key") from None


def _create_key(path: Path) -> bytes:
    """A new key, written so that only this user reads it, and never over one that appeared
    meanwhile (two processes starting at once keep the first one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key
