"""Bearer tokens with scopes for the admin HTTP listener (docs/security.md).

Config `[[security.tokens]]` gives each token an id, its scopes and where the token is (a file or
an environment variable, or only its SHA-256). Only SHA-256 digests are kept; a presented token
is hashed and compared with every configured digest in constant time (hmac.compare_digest, and
no early exit), so neither the timing nor the answer tells which token came close.

Tokens made at run time (gateway/security/tokenstore.py) are kept in Redis as digests. A presented
token that is not one of the config's is looked up there before the request is routed
(`authenticate`, called by the admin site's request factory, gateway/admin/http.py): one HGETALL
of its digest per request, no cache, so a token disabled or expired is refused from the very
next request; the config's tokens are matched in memory and cost no Redis call. Each resource
then checks its scope synchronously (`check`) against what was found.

With no tokens configured, `/healthz` and `/metrics` answer loopback clients only (the default
config and `make run` work as before); every other endpoint needs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from twisted.web import resource

from gateway.config.security import Token
from gateway.security import tokenstore

# What `authenticate` found, kept on the request for `check` (a Token, or a refusal).
_FOUND = "_tillgate_token"
_REFUSED = "_tillgate_token_refusal"

OPEN_WITHOUT_TOKENS = frozenset({"health", "metrics"})


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a UNIX socket or anything odd: not trusted


def _digest(authorization: bytes | None) -> bytes | None:
    """SHA-256 of the token a `Authorization: Bearer <token>` header carries, or None."""
    if not authorization or not authorization[:7].lower() == b"bearer ":
        return None
    return hashlib.sha256(authorization[7:].strip()).digest()


class TokenAuth:
    """`tokens`: the config's. `store_client`: a callable giving the Redis client that holds
    the tokens made at run time (None while the store is down, or no callable: config only)."""

    def __init__(self, tokens: tuple[Token, ...] = (),
                 store_client: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.time):
        self.tokens = tokens
        self.store_client = store_client
        self.clock = clock

    def identify(self, authorization: bytes | None) -> Token | None:
        """The config token a `Authorization: Bearer <token>` header carries, or None."""
        return self._config_token(_digest(authorization))

    def _config_token(self, digest: bytes | None) -> Token | None:
        if digest is None:
            return None
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256) and found is None:
                found = token
        return found

    async def authenticate(self, request) -> None:
        """Find the request's token, the config's or a stored one, before it is routed."""
        digest = _digest(request.getHeader(b"authorization"))
        token = self._config_token(digest)
        if token is not None or digest is None or self.store_client is None:
            setattr(request, _FOUND, token)
            return
        client = self.store_client()
        try:
            if client is None:
                raise RedisError("store not started")
            stored = await tokenstore.lookup(client, digest, self.clock)
        except RedisError as e:
            setattr(request, _REFUSED, (503, f"cannot check the token: {e}"))
            return
        if stored is None:
            setattr(request, _FOUND, None)
        elif not stored.enabled:
            setattr(request, _REFUSED, (401, f"token {stored.id!r} is disabled"))
        elif stored.expired(self.clock()):
            setattr(request, _REFUSED, (401, f"token {stored.id!r} has expired"))
        else:
            setattr(request, _FOUND, Token(stored.id, stored.scopes, stored.sha256))

    def token_of(self, request) -> Token | None:
        """The request's valid token: what `authenticate` found, else a config token."""
        if hasattr(request, _FOUND) or hasattr(request, _REFUSED):
            return getattr(request, _FOUND, None)
        return self.identify(request.getHeader(b"authorization"))

    def check(self, request, scope: str) -> tuple[int, str] | None:
        """None when the request may have `scope`; else (HTTP status, reason)."""
        if not self.tokens and scope in OPEN_WITHOUT_TOKENS:
            if is_loopback(getattr(request.getClientAddress(), "host", "")):
                return None
        refused = getattr(request, _REFUSED, None)
        if refused is not None:
            return refused
        token = self.token_of(request)
        if token is None and not self.tokens:
            return 401, ("a valid bearer token is required (no admin tokens configured: open to "
                         "loopback health and metrics only)")
        if token is None:
            return 401, "a valid bearer token is required"
        if scope not in token.scopes:
            return 403, f"token {token.id!r} lacks the scope {scope!r}"
        return None


class Guarded(resource.Resource):
    """A resource that answers only requests whose token has `scope`."""

    def __init__(self, inner: resource.IResource, scope: str, auth: TokenAuth):
        super().__init__()
        self.inner = inner
        self.scope = scope
        self.auth = auth
        self.isLeaf = inner.isLeaf

    def getChildWithDefault(self, path, request):
        refused = self.auth.check(request, self.scope)
        if refused is not None:
            return Refusal(*refused)
        return self.inner.getChildWithDefault(path, request)

    def render(self, request):
        refused = self.auth.check(request, self.scope)
        if refused is not None:
            return Refusal(*refused).render(request)
        return self.inner.render(request)


class Refusal(resource.Resource):
    isLeaf = True

    def __init__(self, status: int, reason: str):
        super().__init__()
        self.status = status
        self.reason = reason

    def render(self, request):
        request.setResponseCode(self.status)
        request.setHeader(b"content-type", b"application/json")
        if self.status == 401:
            request.setHeader(b"www-authenticate", b'Bearer realm="tillgate"')
        return json.dumps({"error": self.reason}).encode() + b"\n"
