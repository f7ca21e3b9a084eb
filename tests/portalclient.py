"""A small HTTP client for the portal's tests: real sockets, its own cookie, no redirects
followed (the tests look at each 303), helpers to make operators and compute their codes, and
a clock a test can move.

Blocking (http.client); tests on the reactor call it through `await web(client.post, ...)`,
which runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import secrets
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pyotp

from gateway.backoffice import operators as ops
from gateway.reactor import deferred_from_coro
from gateway.web.portal.passwords import hash_password

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
SECRET = re.compile(r'id="secret">([A-Z2-7 ]+)<')
PASSWORD = "correct horse battery staple"


class Clock:
    """The clock of the portal, the member page or the e-card queue in a test: real time at
    first, then moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.body)
        assert found, f"no CSRF token in the page:\n{self.body[:500]}"
        return found.group(1)


@dataclass
class Client:
    port: int
    cookie: str | None = None  # "name=value" of the session cookie
    extra_headers: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None  # HTTPS with this context (the listener has [http.tls])

    def request(self, method: str, path: str, fields: dict[str, str] | bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        conn = (http.client.HTTPSConnection("localhost", self.port, timeout=10,
                                            context=self.tls) if self.tls else
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=10))
        try:
            sent = {**self.extra_headers, **(headers or {})}
            if self.cookie:
                sent["Cookie"] = self.cookie
            body = None
            if isinstance(fields, bytes):  # a body made by the caller (multipart: upload)
                body = fields
            elif fields is not None:
                body = urlencode(fields).encode()
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            cookies = response.headers.get_all("Set-Cookie") or []
            for c in cookies:
                pair = c.split(";", 1)[0]
                self.cookie = None if "Max-Age=0" in c else pair
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                          cookies, response.read().decode())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, fields: dict[str, str], **kw) -> Answer:
        return self.request("POST", path, fields, **kw)

    def upload(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
               ) -> Answer:
        """A multipart/form-data POST, as a browser sends a form with a file field: `files`
        maps a field to (file name, content)."""
        boundary = "----tillgate" + secrets.token_hex(12)
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                 f"{v}\r\n".encode() for k, v in fields.items()]
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; '
                  f'filename="{name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
                  + content + b"\r\n" for k, (name, content) in files.items()]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})


async def web(call, *args, **kwargs):
    """Run a blocking client call in a worker thread, from a test on the reactor."""
    return await deferred_from_coro(asyncio.to_thread(call, *args, **kwargs))


async def make_operator(portal, email: str, role: str = "head_office",
                        merchant: str | None = None, factor: str = "totp",
                        password: str = PASSWORD, enrolled: bool = True
                        ) -> tuple[ops.Operator, str | None]:
    """An operator with a password and, for TOTP with `enrolled`, a secret (returned)."""
    async def make():
        engine = await portal.engine()
        op = await ops.add_operator(engine, email, email.split("@")[0].title(), role,
                                    merchant, factor, await asyncio.to_thread(
                                        hash_password, password))
        secret = None
        if factor == "totp" and enrolled:
            secret = pyotp.random_base32()
            await ops.set_totp_secret(engine, op.id, portal.box().seal(secret))
        return op, secret

    return await deferred_from_coro(make())


def code_for(secret: str, now: float, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(now + 30 * steps_ahead)


def login_password(client: Client, email: str, password: str = PASSWORD) -> Answer:
    form = client.get("/ui/login")
    return client.post("/ui/login", {"csrf": form.csrf, "email": email, "password": password})


def login_code(client: Client, code: str) -> Answer:
    page = client.get("/ui/login/code")
    return client.post("/ui/login/code", {"csrf": page.csrf, "code": code})
