"""The address people reach the admin listener's pages at: the portal's links (set-password,
`/ui/`), the member page an e-card's e-mail points to (`/m/`), the demo's hints.

`[portal] base_url` when set (a proxy in front, a public name); else the listener's own scheme,
host and port, with a loopback or wildcard host written `localhost`.
"""

from __future__ import annotations

from gateway.config.model import Config


def base_url(config: Config) -> str:
    if config.portal.base_url:
        return config.portal.base_url.rstrip("/")
    http = config.http
    host = "localhost" if http.host in ("127.0.0.1", "0.0.0.0", "::", "::1") else http.host
    return f"{'https' if http.tls else 'http'}://{host}:{http.port}"
