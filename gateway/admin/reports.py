"""Admin HTTP: back-office reports (docs/backoffice.md, "Reports"), scope reports:read.

  GET /v1/reports                    the reports, their parameters and columns
  GET /v1/reports/<name>?from=2026-11-01&to=2026-11-30&merchant=...&format=csv
                                     one report: JSON (default) or CSV

Parameters are those of `tillgate reports` without the dashes in front (`customer-type=gold`,
`group-by=day`, `tz=Europe/Paris`); a filter may be repeated. A bad one is a 400 that names it;
a back office that cannot be reached, a 503. The answer is streamed as the database gives rows
(chunked), paced by the client: while its connection's buffer is full the report waits, so a
large report over a slow link holds one batch in memory, not the report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from twisted.internet.interfaces import IPushProducer
from twisted.web import resource, server
from zope.interface import implementer

from gateway.admin.jsonio import finish_json, json_bytes
from gateway.backoffice.connect import UNREACHABLE, BackofficeUnavailable
from gateway.backoffice.reports.base import Report
from gateway.backoffice.reports.catalogue import FORMATS
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.output import Written, report_chunks
from gateway.backoffice.reports.query import FILTERS, Query, parse_query
from gateway.backoffice.reports.registry import REPORTS
from gateway.config.model import Config
from gateway.reactor import deferred_from_coro
from gateway.security.tokens import Refusal, TokenAuth

log = logging.getLogger(__name__)
SCOPE = "reports:read"


class Reports(resource.Resource):
    """`engine_source`: `await engine_source()` is the back office's engine, opened and migrated
    (gateway/backoffice/shared.py), or BackofficeUnavailable saying why not."""

    def __init__(self, config: Config, engine_source: Callable[[], Awaitable[AsyncEngine]],
                 auth: TokenAuth):
        super().__init__()
        self.config = config
        self.engine_source = engine_source
        self.auth = auth

    def getChild(self, path: bytes, request):
        refused = self.auth.check(request, SCOPE)
        if refused is not None:
            return Refusal(*refused)
        if path == b"":
            return self
        name = path.decode("ascii", "replace")
        if name not in REPORTS:
            return Refusal(404, f"no report {name!r} (one of {', '.join(REPORTS)})")
        return OneReport(self, name)

    def render_GET(self, request):
        refused = self.auth.check(request, SCOPE)
        if refused is not None:
            return Refusal(*refused).render(request)
        example = parse_query({"from": ["2026-01-01"], "to": ["2026-01-01"]}, frozenset())
        return json_bytes(request, 200, {"reports": [
            {"name": name, "summary": r.summary, "as_of": r.as_of,
             "parameters": ["to", "tz"] if r.as_of else ["from", "to", "tz"],
             "filters": [f for f in (*FILTERS, "group-by") if f in r.takes],
             "columns": list(r.columns(example))} for name, r in REPORTS.items()]})


class OneReport(resource.Resource):
    isLeaf = True

    def __init__(self, reports: Reports, name: str):
        super().__init__()
        self.reports = reports
        self.name = name

    def render_GET(self, request):
        try:
            raw = {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}
        except UnicodeDecodeError:
            return json_bytes(request, 400, {"error": "parameters must be UTF-8"})
        fmt = raw.pop("format", ["json"])
        if len(fmt) != 1 or fmt[0] not in FORMATS:
            return json_bytes(request, 400, {"error": f"format: one of {', '.join(FORMATS)}",
                                             "parameter": "format"})
        report = REPORTS[self.name]
        try:
            query = parse_query(raw, report.takes, as_of=report.as_of)
        except ReportError as e:
            return json_bytes(request, 400, {"error": str(e), "parameter": e.param})
        written = Written()
        deferred_from_coro(_stream(request, self.name, fmt[0], written, self._chunks(
            report, query, fmt[0], written)))
        return server.NOT_DONE_YET

    async def _chunks(self, report: Report, query: Query, fmt: str, written: Written
                      ) -> AsyncGenerator[str, None]:
        """The report's chunks, the engine opened first (so that a back office that cannot be
        opened is the first chunk's BackofficeUnavailable: a 503)."""
        engine = await self.reports.engine_source()
        async with aclosing(report_chunks(engine, self.reports.config, report, query, fmt,
                                          written)) as chunks:
            async for chunk in chunks:
                yield chunk


async def _stream(request, name: str, fmt: str, written: Written,
                  chunks: AsyncGenerator[str, None]) -> None:
    """Answer with the report's chunks; what goes wrong before the first is a status of its
    own (400, 503), after it the connection is cut (a chunked answer without its end, which
    no client takes for a whole report)."""
    pacer = Pacer()
    try:
        try:
            first = await anext(aiter(chunks))
        except ReportError as e:
            return finish_json(request, 400, {"error": str(e), "parameter": e.param})
        except BackofficeUnavailable as e:
            return finish_json(request, 503, {"error": str(e)})
        except (*UNREACHABLE, SQLAlchemyError) as e:
            log.error("report %s: back office: %s", name, e)
            return finish_json(request, 503, {"error": f"back office: {_first_line(e)}"})
        if request._disconnected:
            return
        request.setResponseCode(200)
        request.setHeader(b"content-type", FORMATS[fmt].encode())
        request.setHeader(b"cache-control", b"no-store")
        if fmt == "csv":
            request.setHeader(b"content-disposition",
                              f'attachment; filename="{name}.csv"'.encode())
        request.registerProducer(pacer, True)
        request.write(first.encode())
        async for chunk in chunks:
            await pacer.ready()
            if pacer.stopped or request._disconnected:
                # the client has gone: stop reading the database
                log.info("report %s: the client left after %d rows; stopped", name,
                         written.rows)
                return
            request.write(chunk.encode())
        if not request._disconnected:
            request.unregisterProducer()
            request.finish()
    except Exception:
        log.exception("report %s failed while being sent; connection cut", name)
        if not request._disconnected:
            request.unregisterProducer()
            request.loseConnection()
    finally:
        await chunks.aclose()


def _first_line(error: BaseException) -> str:
    inner = getattr(error, "orig", None) or error
    text = str(inner).strip()
    return text.splitlines()[0] if text else type(inner).__name__


@implementer(IPushProducer)
class Pacer:
    """Paused by Twisted while the client's connection has more queued than it takes; the
    report waits on `ready()` between chunks."""

    def __init__(self) -> None:
        self.stopped = False
        self._resumed: asyncio.Future[None] | None = None

    async def ready(self) -> None:
        while self._resumed is not None and not self.stopped:
            await asyncio.shield(self._resumed)

    def pauseProducing(self) -> None:
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_future()

    def resumeProducing(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_result(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()

