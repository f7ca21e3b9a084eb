"""`cards import` in the store: the batch's state, its one-time code, and applying it.

A batch (named by its file's SHA-256) goes pending -> confirmed -> done, in one Redis hash:

- pending: a code was e-mailed; only its salted SHA-256 is kept, for `imports.code_minutes`.
  Wrong codes are counted atomically (gateway/ledger/lua/import_confirm.lua); after
  `imports.max_tries` the batch is dropped and must be started again.
- confirmed: the code matched. Applying may start, and start again after a crash: each card is
  created tagged with the batch, so a second run knows its own cards and skips them, and each
  activation has a request key of its own (batch and line), so a second run replays it rather
  than loading the card twice.
- done: every card exists (and is activated where the file says); the same file again changes
  nothing. Kept for 400 days.

Before anything is created, every card of the batch is looked up: a number that exists and is
not the batch's own stops the batch with nothing created.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

from gateway.config.model import Config
from gateway.issuance.importfile import ImportBatch, ImportRow
from gateway.ledger.amounts import format_amount
from gateway.ledger.cards import OPERATOR, card_id, issue_card, operator_activation, state_key
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from protocols.model import mask_card

CONFIRMED_TTL = 7 * 86400  # time to apply (and resume) a confirmed batch
DONE_TTL = 400 * 86400
CODE_DIGITS = 8
PROGRESS_EVERY = 100  # rows between two progress marks in the batch's hash


def batch_key(batch: ImportBatch) -> str:
    return f"imp:{{{batch.digest}}}"


def new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def code_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code.strip()}".encode()).hexdigest()


async def state_of(store: Store, batch: ImportBatch) -> dict[str, str]:
    raw = await store.command("HGETALL", batch_key(batch))
    return {k.decode(): v.decode() for k, v in (raw or {}).items()}


async def start(store: Store, batch: ImportBatch, code: str, ttl: int) -> str:
    """Make the batch pending with `code`; returns its state afterwards (pending, or confirmed
    or done when it had got that far already)."""
    salt = secrets.token_hex(8)
    state = await store.run("import_start", [batch_key(batch)],
                            [code_hash(salt, code), salt, len(batch.rows), int(time.time()), ttl])
    return state.decode()


async def confirm(store: Store, batch: ImportBatch, code: str, salt: str,
                  max_tries: int) -> tuple[str, int]:
    """('confirmed' | 'wrong' | 'dropped' | 'none' | state, tries left). `salt`: the pending
    batch's, from state_of()."""
    outcome, left = await store.run("import_confirm", [batch_key(batch)],
                                    [code_hash(salt, code), max_tries, CONFIRMED_TTL])
    return outcome.decode(), int(left)


async def owned_and_foreign(store: Store, batch: ImportBatch
                            ) -> tuple[set[int], list[ImportRow]]:
    """Lines whose card this batch already created, and rows whose card exists for another
    reason."""
    tags = await asyncio.gather(*(
        store.command("HMGET", state_key(card_id(row.card)), "status", "batch")
        for row in batch.rows))
    owned, foreign = set(), []
    for row, (status, tag) in zip(batch.rows, tags, strict=True):
        if status is None:
            continue
        if tag is not None and tag.decode() == batch.digest:
            owned.add(row.line)
        else:
            foreign.append(row)
    return owned, foreign


class ApplyError(RuntimeError):
    """Applying stopped at a line; what was created so far is the batch's own, and a second
    run of the same confirmed file carries on from there."""


async def apply(store: Store, config: Config, batch: ImportBatch,
                operator: str = OPERATOR) -> tuple[int, int]:
    """Create (and activate) every card of a confirmed batch; (created, activated) by this run.
    `operator`: who applies it, the activations' terminal (the portal's `portal:<id>`). Rows
    gone through so far are kept in the batch's hash (`at`, every PROGRESS_EVERY rows) for the
    portal's progress page."""
    owned, foreign = await owned_and_foreign(store, batch)
    if foreign:
        raise ApplyError("; ".join(f"line {row.line}: card {mask_card(row.card)} already exists"
                                   for row in foreign[:10]))
    processor = Processor(config, store)
    created = activated = 0
    for at, row in enumerate(batch.rows):
        if at % PROGRESS_EVERY == 0:
            await store.command("HSET", batch_key(batch), "at", at)
        if row.line not in owned:
            if not await issue_card(store, row.program, row.card, row.pin, batch=batch.digest):
                raise ApplyError(f"line {row.line}: card {mask_card(row.card)} was created by "
                                 "someone else meanwhile")
            created += 1
        if row.amount is not None:
            result = await processor.operator_apply(operator_activation(
                row.card, row.amount, 0, operator, f"IMP:{batch.digest[:24]}:{row.line}", "cli"))
            if not result.approved:
                raise ApplyError(f"line {row.line}: card {mask_card(row.card)} created but not "
                                 f"activated: response {result.code} {result.message or ''}")
            activated += 1
    await store.command("HSET", batch_key(batch), "state", "done", "done_at", int(time.time()),
                        "at", len(batch.rows))
    await store.command("EXPIRE", batch_key(batch), DONE_TTL)
    return created, activated


def summary(batch: ImportBatch) -> str:
    """"gift: 3 card(s), 75.00 to load; loyalty: 2 card(s)" (the CLI's and the portal's)."""
    parts = []
    for program, (count, total) in batch.totals().items():
        loaded = f", {format_amount(total)} to load" if total else ""
        parts.append(f"{program}: {count} card(s){loaded}")
    return "; ".join(parts)


def mail_body(batch: ImportBatch, name: str, code: str, minutes: int, who: str) -> str:
    """The confirmation e-mail; `who` is the person waiting for the code ("the operator who
    ran `tillgate cards import`", an operator of the portal...)."""
    return (f"A batch of {len(batch.rows)} card(s) is waiting to be created from {name}:\n"
            f"  {summary(batch)}\n"
            f"  file SHA-256 {batch.digest}\n\n"
            f"Confirmation code: {code}  (valid {minutes} minutes)\n\n"
            f"Give it to {who} only if you expected this batch. Otherwise do nothing: without "
            "the code nothing is created.\n")
