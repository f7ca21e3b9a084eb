"""Bearer tokens with scopes for the admin HTTP listener (docs/security.md).

Config `[[security.tokens]]` gives each token an id, its scopes and where the token is (a file or
an environment variable, or only its SHA-256). Only SHA-256 digests are kept; a presented token
is hashed and compared with every configured digest in constant time (hmac.compare_digest, and
no early exit), so neither the timing nor the answer tells which token came close.

With no tokens configured, `/healthz` and `/metrics` answer loopback clients only (the default
config and `make run` work as before); every other endpoint needs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json

from twisted.web import resource

from gateway.config.security import Token

OPEN_WITHOUT_TOKENS = frozenset({"health", "metrics"})


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a UNIX socket or anything odd: not trusted


class TokenAuth:
    def __init__(self, tokens: tuple[Token, ...] = ()):
        self.tokens = tokens

    def identify(self, authorization: bytes | None) -> Token | None:
        """The token a `Authorization: Bearer <token>` header carries, or None."""
        if not authorization or not authorization[:7].lower() == b"bearer ":
            return None
        digest = hashlib.sha256(authorization[7:].strip()).digest()
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256) and found is None:
                found = token
        return found

    def check(self, request, scope: str) -> tuple[int, str] | None:
        """None when the request may have `scope`; else (HTTP status, reason)."""
        if not self.tokens:
            peer = getattr(request.getClientAddress(), "host", "")
            if scope in OPEN_WITHOUT_TOKENS and is_loopback(peer):
                return None
            return 401, "no admin tokens configured: open to loopback health and metrics only"
        token = self.identify(request.getHeader(b"authorization"))
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
