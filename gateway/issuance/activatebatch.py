"""`cards activate` in the store: check a batch against the cards, then activate it, once.

The CLI (gateway/cli/cardactivate.py), the admin API (gateway/admin/activate.py) and the portal
call the same three steps:

1. `check`: every card is looked up. A card that is unknown, of another program, not `issued`
   (already active, suspended, closed ...), or pre-valued with another amount is a problem named
   by its line, and the batch is refused whole: nothing is activated while any line is wrong.
   A card this batch already activated (a retry) is no problem: it is counted as done.
2. `activate`: each card goes through the Processor as an operator activation (the program's
   rules, the activation script, the journal), with the request key
   `ACT:<first 24 hex of the batch id>:<line>`. The batch id is thus in every journal entry's
   request key, and a retried batch replays each stored answer instead of loading again.
   Results are per card (`activated`, `replayed`, or `refused` with the response code): a card
   changed between the check and its activation is refused on its own, the rest go on.
3. `alert_if_large`: a batch of more than `imports.large_activation_cards` cards, or loading more
   than `imports.large_activation_total` minor units, raises the alert `large_activation` through
   the alert queue, once per batch id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.model import Config
from gateway.issuance.activatefile import ActivationBatch, ActivationRow
from gateway.ledger.cards import card_id, operator_activation, record_key, state_key
from gateway.ledger.processor import Processor
from gateway.ledger.store import Store
from gateway.security.alerts.record import Alert
from protocols.model import mask_card

KEY_PREFIX = "ACT:"
CHUNK = 200  # cards looked up or activated at once (the runner batches them into pipelines)
ALERT = "large_activation"
ALERT_TTL = 400 * 86400  # the alert's de-duplication: once per batch id


def request_key(batch: ActivationBatch, row: ActivationRow) -> str:
    """The activation's request key: the batch id (its first 24 hex digits) and the line."""
    return f"{KEY_PREFIX}{batch.id[:24]}:{row.line}"


@dataclass(frozen=True, slots=True)
class Checked:
    """What the store said about a batch: problems by line, lines already done by it, and
    the face value of pre-valued cards (activated as such)."""

    problems: list[str]
    done: frozenset[int]
    faces: dict[int, int]


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    card: str  # masked
    amount: int
    outcome: str  # activated | replayed | refused
    code: str
    balance: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "card": self.card, "amount": self.amount,
                "result": self.outcome, "code": self.code, "balance": self.balance}


async def check(store: Store, batch: ActivationBatch) -> Checked:
    problems: list[str] = []
    done: set[int] = set()
    faces: dict[int, int] = {}
    for start in range(0, len(batch.rows), CHUNK):
        rows = batch.rows[start:start + CHUNK]
        found = await asyncio.gather(*(_look_up(store, batch, row) for row in rows))
        for row, ((status, prog, face), replay) in zip(rows, found, strict=True):
            where = f"line {row.line}: card {mask_card(row.card)}"
            if replay:
                done.add(row.line)
            elif status is None:
                problems.append(f"{where} is not issued (unknown card)")
            elif prog.decode() != batch.program.id:
                problems.append(f"{where} belongs to program {prog.decode()!r}")
            elif status != b"issued":
                problems.append(f"{where} is {status.decode()}, not issued"
                                + (" (already active)" if status == b"active" else ""))
            elif int(face or 0) and int(face) != row.amount:
                problems.append(f"{where} is pre-valued: amount must be its face value")
            if face is not None and int(face):
                faces[row.line] = int(face)
    return Checked(problems, frozenset(done), faces)


async def _look_up(store: Store, batch: ActivationBatch,
                   row: ActivationRow) -> tuple[list, int]:
    cid = card_id(row.card)
    return await asyncio.gather(
        store.command("HMGET", state_key(cid), "status", "prog", "face"),
        store.command("EXISTS", record_key(cid, request_key(batch, row))))


async def activate(processor: Processor, batch: ActivationBatch, checked: Checked,
                   operator: str, channel: str,
                   progress: Callable[[int, int], None] | None = None) -> list[LineResult]:
    """Activate every card of a checked batch (no problems): the result of each, in order.
    `progress(done, total)` is called after every chunk."""
    assert not checked.problems, "a batch with problems is refused whole"
    results: list[LineResult] = []
    for start in range(0, len(batch.rows), CHUNK):
        rows = batch.rows[start:start + CHUNK]
        answers = await asyncio.gather(*(processor.operator_apply(operator_activation(
            row.card, row.amount, checked.faces.get(row.line, 0), operator,
            request_key(batch, row), channel)) for row in rows))
        for row, result in zip(rows, answers, strict=True):
            outcome = ("refused" if not result.approved
                       else "replayed" if row.line in checked.done else "activated")
            results.append(LineResult(row.line, mask_card(row.card), row.amount, outcome,
                                      str(result.code), result.balance))
        if progress is not None:
            progress(len(results), len(batch.rows))
    return results


def is_large(config: Config, batch: ActivationBatch) -> bool:
    imports = config.imports
    return (0 < imports.large_activation_cards < len(batch.rows)
            or 0 < imports.large_activation_total < batch.total)


async def alert_if_large(processor: Processor, batch: ActivationBatch,
                         operator: str) -> str | None:
    """Raise `large_activation` for an unusually large batch (once per batch id); its id."""
    if not is_large(processor.config, batch):
        return None
    now = processor.clock()
    detail = (f"batch {batch.id[:24]}: {len(batch.rows)} {batch.program.id} card(s), "
              f"{batch.total} (minor units or points) to load, by {operator}")
    alert = Alert(rule=ALERT, scope="program", value=batch.program.id, event=ALERT,
                  action="alert", window=0, window_start=0, count=len(batch.rows),
                  amount=batch.total, max_count=processor.config.imports.large_activation_cards,
                  max_amount=processor.config.imports.large_activation_total,
                  terminal=operator, merchant="", card="", time=int(now), detail=detail)
    return await processor.alerts.raise_alert(alert, batch.id[:24], ALERT_TTL)


def summary(results: list[LineResult]) -> dict[str, int]:
    counts = {"activated": 0, "replayed": 0, "refused": 0}
    for result in results:
        counts[result.outcome] += 1
    return counts
