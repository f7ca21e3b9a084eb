"""Card batches from a CSV file in the browser: the `tillgate cards import` flow
(gateway/issuance/importfile.py, importbatch.py; docs/card-import.md), no second implementation.

1. Upload (multipart/form-data, up to `MAX_UPLOAD`; the only portal route that takes more than
   the 64 KiB of a form). The file is read whole and every row checked first: a bad row is
   reported by its line number and nothing is stored. Rows of programs not open to the
   operator's merchant are bad rows too.
2. A one-time code goes by e-mail to `imports.confirm_to`, through the one mail path (SMTP, or
   the embedded default's maildir), exactly as for the CLI; the batch waits in Redis
   (importbatch: `imp:{<sha256>}`, the code salted and hashed, its tries counted atomically).
   The file itself waits beside it, sealed with the portal's key (`imp:{<sha256>}:portal`), for
   as long as the code lives: it holds the cards' PINs, so it is never in Redis in clear, and
   it is deleted as soon as the batch is done.
3. The operator who uploaded it enters the code; then a background task of the gateway applies
   the batch (importbatch.apply: each card tagged with the batch, each activation with a
   request key of its own, so a second run applies nothing twice), while the progress page
   refreshes itself (`<meta http-equiv="refresh">`: no script) from the batch's hash in Redis.
   One run at a time (`imp:{<sha256>}:run`, kept alive while it runs); a run that stopped (an
   error, a restart) is resumed from the progress page.

Head office and managers; a manager's file may hold cards of their merchant's programs only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from typing import Any

from gateway.backoffice.operators import Operator
from gateway.issuance import importbatch
from gateway.issuance.importfile import ImportBatch, ImportFileError, read_batch
from gateway.issuance.mailer import MailError
from gateway.reactor import deferred_from_coro
from gateway.security.secretbox import SecretBoxError
from gateway.web.portal.cardissue import MANAGERS
from gateway.web.portal.cardlookup import may_see
from gateway.web.portal.cardref import journal_name
from gateway.web.portal.sessions import IN
from gateway.web.portal.web import Ctx, Page, Redirect, Reply, Route

log = logging.getLogger(__name__)

MAX_UPLOAD = 4 * 1024 * 1024  # about 50,000 rows of card, program, PIN and amount
DIGEST = re.compile(r"^[0-9a-f]{64}$")
REFRESH_SECONDS = 2
RUN_LOCK_SECONDS = 60  # renewed every third of it while a run lives
MAX_PROBLEMS = 50  # shown on the page (the count says how many more)
RUNNING: set[Any] = set()  # the Deferreds of runs in this process (kept from the collector)


def held_key(digest: str) -> str:
    return f"imp:{{{digest}}}:portal"  # the batch's slot


def run_key(digest: str) -> str:
    return f"imp:{{{digest}}}:run"


def _page(ctx: Ctx, values: dict | None = None, status: int = 200) -> Page:
    operator = ctx.operator
    assert operator is not None
    programs = [p.id for p in ctx.portal.config.programs.values() if may_see(operator, p)]
    return Page("batch.html", {"title": "Card batches", "stage": "upload", "programs": programs,
                               "problems": [], "more": 0, "max_mib": MAX_UPLOAD // 2**20,
                               **(values or {})}, status)


async def form(ctx: Ctx) -> Reply:
    return _page(ctx)


def _problems(ctx: Ctx, problems: list[str]) -> Page:
    return _page(ctx, {"error": f"Nothing was imported: {len(problems)} problem(s) in the file.",
                       "problems": problems[:MAX_PROBLEMS],
                       "more": max(0, len(problems) - MAX_PROBLEMS)}, 400)


async def upload(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    config = ctx.portal.config
    files = (ctx.request.args or {}).get(b"file") or []
    if len(files) != 1 or not files[0]:
        return _page(ctx, {"error": "Choose a CSV file to upload."}, 400)
    if not config.imports.confirm_to:
        return _page(ctx, {"error": "Batches need imports.confirm_to in the config: the "
                                    "address the one-time code goes to."}, 503)
    data: bytes = files[0]
    program_id = ctx.form.get("program") or None
    try:
        batch = read_batch(data, config, program_id)
    except ImportFileError as e:
        return _problems(ctx, e.problems)
    closed = [f"line {row.line}: program {row.program.id} is not open to your merchant"
              for row in batch.rows if not may_see(operator, row.program)]
    if closed:
        return _problems(ctx, closed)
    store = ctx.portal.store()
    state = (await importbatch.state_of(store, batch)).get("state")
    if state in ("confirmed", "done"):  # confirmed already: go on where it is
        if state == "confirmed":  # (by the CLI, or a run that stopped): Resume needs the file
            await _hold(ctx, operator, batch, data, program_id, importbatch.CONFIRMED_TTL)
        return Redirect(f"batches/progress?b={batch.digest}")
    _owned, foreign = await importbatch.owned_and_foreign(store, batch)
    if foreign:
        return _problems(ctx, [f"line {row.line}: the card already exists" for row in foreign])
    minutes = config.imports.code_minutes
    code = importbatch.new_code()
    await importbatch.start(store, batch, code, minutes * 60)
    await _hold(ctx, operator, batch, data, program_id, minutes * 60)
    name = f"a file uploaded to the portal by {operator.email}"
    try:
        for to in config.imports.confirm_to:
            await ctx.portal.send_mail(to, "[tillgate] cards import: confirmation code",
                                       importbatch.mail_body(batch, name, code, minutes,
                                                             operator.email))
    except MailError as e:
        log.error("portal: batch %s: the code could not be sent: %s", batch.digest[:12], e)
        return _page(ctx, {"error": "The confirmation code could not be sent. Try again "
                                    "later."}, 503)
    log.info("portal: operator %d uploaded batch %s (%d cards); code sent", operator.id,
             batch.digest[:12], len(batch.rows))
    return _code_page(ctx, batch.digest, importbatch.summary(batch), minutes)


def _code_page(ctx: Ctx, digest: str, summary: str, minutes: int,
               error: str | None = None, status: int = 200) -> Page:
    return _page(ctx, {"stage": "code", "digest": digest, "summary": summary,
                       "minutes": minutes, "error": error,
                       "confirm_to": ", ".join(ctx.portal.config.imports.confirm_to)}, status)


async def _hold(ctx: Ctx, operator: Operator, batch: ImportBatch, data: bytes,
                program_id: str | None, ttl: int) -> None:
    """Keep the file, sealed, beside the batch until it is applied (or its code expires)."""
    sealed = ctx.portal.box().seal(base64.b64encode(data).decode("ascii"))
    client = ctx.portal.redis()
    key = held_key(batch.digest)
    await client.hset(key, mapping={"file": sealed, "program": program_id or "",
                                    "by": str(operator.id), "error": ""})
    await client.expire(key, ttl)


async def _held(ctx: Ctx, operator: Operator, digest: str) -> ImportBatch | None:
    """The batch this operator uploaded under `digest`, read again from its sealed file."""
    if not DIGEST.match(digest):
        return None
    held = await ctx.portal.redis().hgetall(held_key(digest))
    if not held or held.get(b"by", b"").decode() != str(operator.id):
        return None
    try:
        data = base64.b64decode(ctx.portal.box().open(held[b"file"].decode("ascii")))
        batch = read_batch(data, ctx.portal.config, held[b"program"].decode() or None)
    except (SecretBoxError, ImportFileError, ValueError):  # a reload changed the programs...
        return None
    return batch if batch.digest == digest else None


async def confirm(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    digest = ctx.form.get("batch", "")
    store = ctx.portal.store()
    if DIGEST.match(digest) and (await importbatch.state_of(
            store, ImportBatch(digest, ()))).get("state") in ("confirmed", "done"):
        return _page(ctx, {"error": "This batch was confirmed already: its code is used. "
                                    "See its progress below.", "stage": "used",
                           "digest": digest}, 409)
    batch = await _held(ctx, operator, digest)
    if batch is None:
        return _page(ctx, {"error": "No batch of yours is waiting for a code (it expired, or "
                                    "was dropped). Upload the file again."}, 400)
    found = await importbatch.state_of(store, batch)
    outcome, left = await importbatch.confirm(store, batch, ctx.form.get("code", "")[:40],
                                              found.get("salt", ""),
                                              ctx.portal.config.imports.max_tries)
    summary, minutes = importbatch.summary(batch), ctx.portal.config.imports.code_minutes
    if outcome == "wrong":
        return _code_page(ctx, digest, summary, minutes,
                          f"That code is not right: {left} tr{'y' if left == 1 else 'ies'} "
                          "left.", 400)
    if outcome != "confirmed":  # dropped (no tries left), or none (expired)
        await ctx.portal.redis().delete(held_key(digest))
        why = ("That code is not right, and no tries are left: the batch was dropped."
               if outcome == "dropped" else "The code expired.")
        return _page(ctx, {"error": f"{why} Upload the file again for a new code."}, 400)
    await ctx.portal.redis().expire(held_key(digest), importbatch.CONFIRMED_TTL)
    log.warning("portal: operator %d confirmed batch %s (%d cards)", operator.id, digest[:12],
                len(batch.rows))
    _start(ctx, operator, batch)
    return Redirect(f"batches/progress?b={digest}")


def _start(ctx: Ctx, operator: Operator, batch: ImportBatch) -> None:
    d = deferred_from_coro(_run(ctx.portal, batch, journal_name(operator)))
    RUNNING.add(d)
    d.addBoth(lambda _: RUNNING.discard(d))


async def _run(portal: Any, batch: ImportBatch, who: str) -> None:
    """Apply the batch unless a run of it is under way (here or in another gateway)."""
    client = portal.redis()
    lock = run_key(batch.digest)
    if not await client.set(lock, who, nx=True, ex=RUN_LOCK_SECONDS):
        return
    keep = asyncio.ensure_future(_keep_alive(client, lock))
    try:
        await client.hset(held_key(batch.digest), "error", "")
        created, activated = await importbatch.apply(portal.store(), portal.config, batch,
                                                     operator=who)
        await client.delete(held_key(batch.digest))  # its PINs are not needed any more
        log.warning("portal: %s applied batch %s: %d created, %d activated by this run", who,
                    batch.digest[:12], created, activated)
    except importbatch.ApplyError as e:
        log.error("portal: batch %s stopped: %s", batch.digest[:12], e)
        await client.hset(held_key(batch.digest), "error", str(e))
    except Exception as e:  # the progress page must say it stopped, whatever stopped it
        log.exception("portal: batch %s failed", batch.digest[:12])
        await client.hset(held_key(batch.digest), "error", f"stopped: {type(e).__name__}")
    finally:
        keep.cancel()
        await client.delete(lock)


async def _keep_alive(client: Any, lock: str) -> None:
    while True:
        await asyncio.sleep(RUN_LOCK_SECONDS / 3)
        await client.expire(lock, RUN_LOCK_SECONDS)


async def progress(ctx: Ctx) -> Reply:
    digest = ctx.query.get("b", "")
    if not DIGEST.match(digest):
        return _page(ctx, {"error": "There is no such batch."}, 404)
    store = ctx.portal.store()
    found = await importbatch.state_of(store, ImportBatch(digest, ()))
    if not found:
        return _page(ctx, {"error": "There is no such batch (or its code expired)."}, 404)
    client = ctx.portal.redis()
    running = bool(await client.exists(run_key(digest)))
    error = (await client.hget(held_key(digest), "error") or b"").decode()
    cards, at = int(found.get("cards", 0)), int(found.get("at", 0))
    state = found.get("state", "")
    return Page("batch_progress.html", {
        "title": "Card batch", "digest": digest, "state": state, "cards": cards, "at": at,
        "percent": 100 * at // cards if cards else 100, "running": running,
        "refresh": REFRESH_SECONDS if running or (state == "confirmed" and not error) else 0,
        "stopped": error or None, "resumable": state == "confirmed" and not running})


async def resume(ctx: Ctx) -> Reply:
    operator = ctx.operator
    assert operator is not None
    digest = ctx.form.get("batch", "")
    batch = await _held(ctx, operator, digest)
    if batch is None:
        return _page(ctx, {"error": "No batch of yours is waiting to be applied."}, 400)
    state = (await importbatch.state_of(ctx.portal.store(), batch)).get("state")
    if state == "confirmed":
        _start(ctx, operator, batch)
    return Redirect(f"batches/progress?b={digest}")


ROUTES = {
    ("GET", "batches"): Route(form, IN, MANAGERS),
    ("POST", "batches"): Route(upload, IN, MANAGERS, max_body=MAX_UPLOAD),
    ("POST", "batches/confirm"): Route(confirm, IN, MANAGERS),
    ("GET", "batches/progress"): Route(progress, IN, MANAGERS),
    ("POST", "batches/apply"): Route(resume, IN, MANAGERS),
}
