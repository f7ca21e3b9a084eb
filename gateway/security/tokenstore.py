"""Admin bearer tokens made at run time (`tillgate tokens ...`, `/v1/tokens`), kept in Redis.

The secret is 32 random bytes (256 bits, URL-safe base64), shown once at creation and never
stored: Redis holds its SHA-256, as the config does for its tokens. A plain SHA-256 suffices
(no HMAC key or slow hash) because the secret is random, not a password: there is nothing to
guess from the digest. Keys, all in one hash slot `{admintokens}`:

  {admintokens}:t:<sha256 hex>   hash: id, name, scopes (space-separated), created, expires
                                 (epoch seconds, "" for never), enabled ("1"/"0"), last_used
  {admintokens}:ids              hash: token id -> sha256 hex (for list, enable, disable)

A request looks up the one hash of the digest it presents (one HGETALL): a disabled or expired
token is refused from the next request on, with no cache to outlive the change. `last_used` is
written at most once a minute per token (LAST_USED_EVERY), so a busy token costs no write per
request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.config.security import Token

INDEX = "{admintokens}:ids"
LAST_USED_EVERY = 60  # seconds between two writes of one token's last_used
NAME_MAX = 64


def record_key(sha256_hex: str) -> str:
    return f"{{admintokens}}:t:{sha256_hex}"


@dataclass(frozen=True, slots=True)
class StoredToken:
    id: str
    name: str
    scopes: frozenset[str]
    sha256: bytes
    created: int
    expires: int | None
    enabled: bool
    last_used: int | None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def as_dict(self) -> dict:
        """For `tokens list` and `/v1/tokens`: never the digest, never the secret."""
        return {"id": self.id, "name": self.name, "scopes": sorted(self.scopes),
                "source": "runtime", "created": iso(self.created),
                "expires": iso(self.expires), "enabled": self.enabled,
                "last_used": iso(self.last_used)}


def iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class TokenProblem(ValueError):
    """Bad input for create, enable or disable; the message names the field."""


class UnknownToken(TokenProblem):
    """enable or disable of an id that no stored token has."""


def _decode(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
                                                          else v) for k, v in raw.items()}


def _parse(fields: dict[str, str], digest: bytes) -> StoredToken:
    return StoredToken(
        id=fields["id"], name=fields.get("name", ""),
        scopes=frozenset(fields.get("scopes", "").split()), sha256=digest,
        created=int(fields.get("created") or 0),
        expires=int(fields["expires"]) if fields.get("expires") else None,
        enabled=fields.get("enabled") == "1",
        last_used=int(fields["last_used"]) if fields.get("last_used") else None)


async def lookup(client, digest: bytes, clock: Callable[[], float] = time.time
                 ) -> StoredToken | None:
    """The stored token whose secret hashes to `digest`, or None. Marks it used (at most once
    a minute) when it is enabled and not expired."""
    fields = _decode(await client.hgetall(record_key(digest.hex())))
    if not fields.get("id"):
        return None
    token = _parse(fields, digest)
    now = int(clock())
    if token.enabled and not token.expired(now) and (
            token.last_used is None or now - token.last_used >= LAST_USED_EVERY):
        await client.hset(record_key(digest.hex()), "last_used", str(now))
    return token


async def create(client, name: str, scopes: Iterable[str], known_scopes: Iterable[str],
                 taken_ids: Iterable[str] = (), expires: int | None = None,
                 clock: Callable[[], float] = time.time) -> tuple[StoredToken, str]:
    """A new enabled token and its secret (to show once). `taken_ids`: the config's token ids,
    which a stored token never shadows."""
    scopes = frozenset(scopes)
    known = tuple(known_scopes)
    if not scopes:
        raise TokenProblem("scopes: give at least one scope")
    unknown = sorted(scopes - set(known))
    if unknown:
        raise TokenProblem(f"scopes: unknown scope {unknown[0]!r} (known: {', '.join(known)})")
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise TokenProblem(f"name: 1 to {NAME_MAX} printable characters")
    now = int(clock())
    if expires is not None and expires <= now:
        raise TokenProblem("expires: must be in the future")
    taken = set(taken_ids)
    while True:
        token_id = "rt-" + secrets.token_hex(4)
        if token_id not in taken:
            break
    secret = secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).digest()
    token = StoredToken(id=token_id, name=name, scopes=scopes, sha256=digest, created=now,
                        expires=expires, enabled=True, last_used=None)
    if not await client.hsetnx(INDEX, token_id, digest.hex()):
        raise TokenProblem(f"id {token_id!r} exists; try again")  # 2**-32: never in practice
    await client.hset(record_key(digest.hex()), mapping={
        "id": token_id, "name": name, "scopes": " ".join(sorted(scopes)),
        "created": str(now), "expires": "" if expires is None else str(expires),
        "enabled": "1", "last_used": ""})
    return token, secret


async def list_tokens(client) -> list[StoredToken]:
    index = _decode(await client.hgetall(INDEX))
    ids = sorted(index)
    pipe = client.pipeline(transaction=False)  # one round trip for every record
    for token_id in ids:
        pipe.hgetall(record_key(index[token_id]))
    records = await pipe.execute() if ids else []
    return [_parse(fields, bytes.fromhex(index[token_id]))
            for token_id, fields in zip(ids, map(_decode, records), strict=True)
            if fields.get("id")]  # a record lost half-way through its creation is skipped


async def set_enabled(client, token_id: str, enabled: bool) -> StoredToken | None:
    """Enable or disable a stored token by id; None when there is no such token."""
    digest_hex = await client.hget(INDEX, token_id)
    if digest_hex is None:
        return None
    digest_hex = digest_hex.decode() if isinstance(digest_hex, bytes) else digest_hex
    key = record_key(digest_hex)
    if not await client.exists(key):
        return None
    await client.hset(key, "enabled", "1" if enabled else "0")
    return _parse(_decode(await client.hgetall(key)), bytes.fromhex(digest_hex))


def parse_expiry(text: str) -> int:
    """`expires` as given to create: an ISO 8601 date-time with its zone, e.g.
    `2027-01-31T18:00:00Z` (epoch seconds back)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TokenProblem(f"expires: {text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise TokenProblem(f"expires: {text!r} needs a zone, e.g. {text}Z")
    return int(when.timestamp())


def config_token_view(token: Token) -> dict:
    """A config token in a listing: always enabled, changed only in the config."""
    return {"id": token.id, "name": "", "scopes": sorted(token.scopes), "source": "config",
            "created": None, "expires": None, "enabled": True, "last_used": None}


async def listing(client, config_tokens: Iterable[Token]) -> list[dict]:
    """Every token, the config's first, as `tokens list` and `GET /v1/tokens` show them."""
    return ([config_token_view(t) for t in config_tokens]
            + [t.as_dict() for t in await list_tokens(client)])


async def switch(client, token_id: str, enabled: bool, config_tokens: Iterable[Token]
                 ) -> StoredToken:
    """Enable or disable a stored token; TokenProblem for a config token or an unknown id."""
    if any(t.id == token_id for t in config_tokens):
        raise TokenProblem(f"token {token_id!r} is in the config: change it there")
    token = await set_enabled(client, token_id, enabled)
    if token is None:
        raise UnknownToken(f"no token {token_id!r}")
    return token
