"""Admin HTTP listener (HOST-SPEC 1, default 127.0.0.1:8580): `/healthz` and `/metrics`, and the
JSON API under `/v1/`: `/v1/terminals/...` (gateway/admin/terminals.py), `/v1/alerts`
(gateway/admin/alerts.py), `/v1/cards/...` (gateway/admin/cards.py) and `/v1/tokens`
(gateway/admin/tokens.py); bearer tokens with scopes (gateway/security/tokens.py), found before
a request is routed (TokenRequest).

`/healthz` answers 200 while the gateway is started and its store answers, 503 otherwise (a
load balancer stops sending tills to a gateway that cannot reach Redis). It also reports the
back office (`backoffice` up/down/disabled and the feed's lag), which never makes it 503: tills
do not need SQL. `/metrics` is the
Prometheus text format of gateway.metrics.families.REGISTRY (in a worker of `serve --workers N`,
of all workers' metrics summed: gateway/metrics/multiproc.py).
"""

from __future__ import annotations

import logging

from prometheus_client.twisted import MetricsResource
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.web import resource, server

from gateway.admin.jsonio import json_bytes
from gateway.config.model import HTTPConfig
from gateway.listeners.endpoints import server_endpoint
from gateway.metrics.families import REGISTRY
from gateway.metrics.multiproc import exposition_registry
from gateway.reactor import deferred_from_coro
from gateway.security.tokens import Guarded, TokenAuth
from gateway.services import AsyncService

log = logging.getLogger(__name__)


class JSONResource(resource.Resource):
    isLeaf = True

    def reply(self, request, status: int, body: dict) -> bytes:
        return json_bytes(request, status, body)


class Health(JSONResource):
    def __init__(self, health_source):
        super().__init__()
        self.health_source = health_source  # callable -> (ok: bool, details: dict)

    def render_GET(self, request):
        ok, details = self.health_source()
        return self.reply(request, 200 if ok else 503, {"status": "ok" if ok else "unavailable",
                                                         **details})


def api_resources(first_release: dict[bytes, resource.Resource],
                  since_v1: dict[bytes, resource.Resource] | None = None
                  ) -> dict[bytes, resource.Resource]:
    """The JSON API under `/v1/` (HOST-SPEC 1). The first release served its resources
    unversioned (`/terminals/...`, `/alerts`): those paths still answer; newer ones are under
    `/v1/` only."""
    v1 = resource.Resource()
    for name, child in {**first_release, **(since_v1 or {})}.items():
        v1.putChild(name, child)
    return {b"v1": v1, **first_release}


def build_site(health_source, auth: TokenAuth | None = None,
               extra: dict[bytes, resource.Resource] | None = None) -> server.Site:
    """`auth`: bearer tokens with scopes (gateway/security/tokens.py); without tokens, health and
    metrics answer loopback clients only. `extra`: more top-level resources (they check scopes)."""
    auth = auth or TokenAuth()
    root = resource.Resource()
    root.putChild(b"healthz", Guarded(Health(health_source), "health", auth))
    metrics = MetricsResource(registry=exposition_registry(REGISTRY))
    root.putChild(b"metrics", Guarded(metrics, "metrics", auth))
    for name, child in (extra or {}).items():
        root.putChild(name, child)
    site = QuietSite(root)
    site.auth = auth
    site.displayTracebacks = False
    return site


class TokenRequest(server.Request):
    """A request whose bearer token is looked up (in the config, else in Redis) before it is
    routed, so that every resource's synchronous scope check sees a token made or disabled at
    run time without a cache in between."""

    def process(self):
        auth = self.channel.site.auth  # set by build_site
        d = deferred_from_coro(auth.authenticate(self))
        d.addCallbacks(self._authenticated, self._failed)

    def _authenticated(self, _) -> None:
        if not self._disconnected:  # the client left while its token was looked up
            server.Request.process(self)

    def _failed(self, failure) -> None:
        log.error("admin token lookup failed: %s", failure.getErrorMessage())
        if not self._disconnected:
            self.processingFailed(failure)


class QuietSite(server.Site):
    """No access log: probes hit /healthz and /metrics every few seconds; that is not news."""

    noisy = False
    requestFactory = TokenRequest
    auth: TokenAuth

    def log(self, request) -> None:
        pass


class AdminHTTPService(AsyncService):
    name = "admin-http"

    def __init__(self, reactor, config: HTTPConfig, health_source,
                 auth: TokenAuth | None = None,
                 extra: dict[bytes, resource.Resource] | None = None):
        self.reactor = reactor
        self.config = config
        self.site = build_site(health_source, auth, extra)
        self.port: IListeningPort | None = None

    async def start(self) -> None:
        cfg = self.config
        endpoint = server_endpoint(self.reactor, cfg.host, cfg.port, cfg.tls)
        port = self.port = await endpoint.listen(self.site)
        log.info("admin HTTP on %s:%d", cfg.host, port.getHost().port)

    async def stop(self) -> None:
        if self.port is not None:
            await maybeDeferred(self.port.stopListening)
            self.port = None
