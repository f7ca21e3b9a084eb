"""`EcardQueue`: the e-card delivery queue inside `tillgate serve` (docs/ecards.md).

The queue is the back office's `ecards` table (gateway/backoffice/ecards.py): durable across
restarts, shared by every gateway on one database, and what the operators' list shows. Every
`poll_seconds` (and at once after an order) the service:

1. puts back into the queue the tries whose lease ran out (a gateway stopped mid-send);
2. for each due row: claims it (queued -> sending, one conditional UPDATE, committed before the
   SMTP transaction begins), sends its e-mail, then marks it sent (the PIN dropped), or queued
   again with back-off (no connection, a timeout, a 4xx), or failed (a 5xx, or max_attempts);
3. measures the queue (metrics, /healthz, the portal: stuck when an e-card's e-mail is later
   than stuck_minutes after its delivery time, whether its tries fail or none is made).

Delivery is at least once, and once in every case but one: the "sent" mark is committed after
the server's 250 to the message's final dot. A gateway that stops before that 250 leaves a
message the server has not taken (SMTP: no 250, no delivery), so trying it again delivers it
once. Only a stop in the milliseconds between the 250 and the commit sends it twice, with the
same Message-ID both times. Marking it sent before the SMTP transaction would instead lose an
e-card at any stop during the transaction: a lost gift is worse than a second e-mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.backoffice import ecards as rows
from gateway.backoffice.ecards import EcardRow
from gateway.config.model import Config
from gateway.issuance.ecardmail import EcardLetter, compose
from gateway.issuance.ecards import card_and_pin, member_url
from gateway.issuance.mailer import MailError, send_email
from gateway.metrics import families as metrics
from gateway.reactor import deferred_from_coro
from gateway.services import AsyncService

log = logging.getLogger("tillgate.ecards")
BATCH = 20  # rows taken per pass; the next pass comes at once while rows are due
STOP_WAIT = 10.0  # seconds a stop waits for the e-mail in hand (then it is cancelled)


class EcardQueue(AsyncService):
    name = "ecards"

    def __init__(self, config: Config, engine_source: Callable[[], Awaitable[AsyncEngine]],
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.engine_source = engine_source
        self.clock = clock
        self.state = "disabled" if not config.ecards.enabled else "starting"
        self.due = 0  # queued rows due now, at the last measure
        self.stuck = False
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.config.ecards.enabled:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await deferred_from_coro(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        self.wake()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=STOP_WAIT)
            if not done:  # an SMTP server that hangs: the row's lease brings it back later
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def wake(self) -> None:
        """Look at the queue now (a new order, a resend) instead of at the next poll."""
        if self._wake is not None:
            self._wake.set()

    def health(self) -> dict[str, object]:
        """For /healthz (never a reason for a 503: tills do not need e-mail)."""
        return {"ecards": "stuck" if self.stuck else self.state, "ecards_due": self.due}

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                busy = await self.run_once()
                if self.state == "down":
                    log.warning("e-cards: the delivery queue runs again")
                self.state = "up"
            except Exception as e:  # SQL down: orders wait in the table, nothing is lost
                busy = False
                if self.state != "down":  # once per outage, not once per poll
                    log.warning("e-cards: the delivery queue cannot run (%s); trying again "
                                "every %d s", e, self.config.ecards.poll_seconds)
                self.state = "down"
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.ecards.poll_seconds)

    async def run_once(self) -> bool:
        """One pass; True when it took a full batch (more may be due)."""
        engine = await self.engine_source()
        now = int(self.clock())
        released = await rows.release_stale(engine, now)
        if released:
            log.warning("e-cards: %d send(s) cut short by a stop are queued again", released)
        due = await rows.due(engine, now, BATCH)
        for row in due:
            if self._stopping:
                break
            await self._deliver(engine, row)
        await self._measure(engine)
        return len(due) == BATCH

    async def _deliver(self, engine: AsyncEngine, row: EcardRow) -> None:
        cfg = self.config.ecards
        now = int(self.clock())
        if not await rows.claim(engine, row.id, now, now + cfg.sending_lease_seconds):
            return  # another gateway took it
        attempt = row.attempts + 1
        try:
            card, pin = card_and_pin(self.config, row)
            program = self.config.programs.get(row.program)
            letter = EcardLetter(row.id, row.recipient_name, row.recipient_email,
                                 row.sender_name, row.message, row.program,
                                 program is not None and program.is_loyalty, row.amount, card,
                                 pin, member_url(self.config))
            msg = compose(self.config.email, cfg.subject, letter, row.sends + 1)
            await asyncio.to_thread(send_email, self.config.email, msg)
        except MailError as e:
            if e.permanent or attempt >= cfg.max_attempts:
                why = str(e) if e.permanent else f"{e} (gave up after {attempt} tries)"
                await rows.failed(engine, row.id, why)
                metrics.ECARDS_DELIVERIES.labels("failed").inc()
                log.warning("e-card %s (%s): not delivered: %s", row.id[:8], row.card_mask, why)
                return
            wait = min(cfg.retry_first_seconds * 2 ** (attempt - 1), cfg.retry_max_seconds)
            await rows.retry_at(engine, row.id, int(self.clock()) + wait, str(e))
            metrics.ECARDS_DELIVERIES.labels("retry").inc()
            log.info("e-card %s (%s): try %d failed (%s); next in %d s", row.id[:8],
                     row.card_mask, attempt, e, wait)
            return
        except Exception as e:  # the e-mail could not be made (a key file gone): shown, kept
            await rows.failed(engine, row.id, f"not sent: {e}")
            metrics.ECARDS_DELIVERIES.labels("failed").inc()
            log.exception("e-card %s (%s): cannot make its e-mail", row.id[:8], row.card_mask)
            return
        await rows.sent(engine, row.id, int(self.clock()))
        metrics.ECARDS_DELIVERIES.labels("sent").inc()
        log.info("e-card %s (%s) sent to its recipient", row.id[:8], row.card_mask)

    async def _measure(self, engine: AsyncEngine) -> None:
        now = int(self.clock())
        per_state, oldest = await rows.counts(engine, now)
        for state, count in per_state.items():
            if state in ("queued", "sending", "failed"):
                metrics.ECARDS_QUEUED.labels(state).set(count)
        waited = 0 if oldest is None else max(0, now - oldest)
        metrics.ECARDS_OLDEST_DUE.set(waited)
        self.due = per_state["queued"] + per_state["sending"] if oldest is not None else 0
        self.stuck = waited > self.config.ecards.stuck_minutes * 60
