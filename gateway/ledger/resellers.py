"""Reseller (POSA) rules: what a network such as Blackhawk or InComm may do, on top of the ledger.

A request is a reseller's when its merchant carries `reseller = "<id>"`. Then (docs/resellers.md):
- an activation or pre-validation names its product by UPC (field 63 tag `UP`); the product
  must be in the reseller's catalogue, belong to the card's program and admit the amount;
- a retransmission with the same RRN (field 37) gets the original response, even under a new
  STAN or transmission time: the RRN is claimed in the merchant's slot and a repeat is mapped
  back onto the original's request key, so the card script replays what it answered then;
- reversals are accepted within the reseller's own window;
- every approved activation, deactivation and reversal is written to the reseller's settlement
  record of the day (merchant slot, one hash entry per request key, so replays never double),
  from which `tillgate resellers report` writes the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import msgpack

from gateway.config.model import Config, Program, Reseller
from gateway.ledger.store import Store
from protocols.model import RC, Op, Request, Result, mask_card

ACTIVATIONS = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.PREVALIDATE})
SETTLED = {Op.ACTIVATE: "activation", Op.ACTIVATE_PREVALUED: "activation",
           Op.VOID: "deactivation", Op.REVERSAL: "reversal"}
SETTLEMENT_TTL = 400 * 86400  # a settlement day is kept for more than a year of disputes
REPORT_COLUMNS = ("time", "reseller", "merchant", "terminal", "type", "rrn", "upc", "serial",
                  "card", "amount", "currency", "response", "auth", "request_key")


def rrn_key(merchant: str, message_class: str, rrn: str) -> str:
    return f"{{m:{merchant}}}:rrn:{message_class}:{rrn}"


def settlement_key(merchant: str, day: str) -> str:
    return f"{{m:{merchant}}}:settle:{day}"


@dataclass(frozen=True, slots=True)
class ResellerRules:
    config: Config

    def reseller_of(self, req: Request) -> Reseller | None:
        merchant = self.config.merchants.get(req.merchant)
        if merchant is None or not merchant.reseller:
            return None
        return self.config.resellers.get(merchant.reseller)

    def check(self, req: Request, program: Program, reseller: Reseller) -> Result | None:
        """Catalogue rules of an activation; None when the request may go on."""
        if req.op not in ACTIVATIONS:
            return None
        if not req.upc:
            if reseller.require_upc:
                return Result(RC.FORMAT_ERROR, message="UPC required")
            return None
        product = reseller.products.get(req.upc)
        if product is None or product.program != program.id:
            return Result(RC.INVALID_TRANSACTION, message="unknown product")
        if req.op is not Op.PREVALIDATE and not product.admits(req.amount):
            return Result(RC.INVALID_AMOUNT, message="amount not this product's")
        return None

    async def same_rrn(self, store: Store, req: Request, reseller: Reseller,
                       ttl: int) -> str | Result | None:
        """The original request key when this RRN was seen before with the same content, a
        94 Result when it was seen with other content, None when it is new (now claimed)."""
        if not (reseller.rrn_retransmission and req.rrn):
            return None
        # A deactivation may carry the RRN of the activation it undoes: it claims it apart.
        message_class = req.key.split(":", 1)[0] + ("V" if req.op is Op.VOID else "")
        found = await store.run("rrn", [rrn_key(req.merchant, message_class, req.rrn)],
                                [req.key, req.fingerprint(), ttl])
        if not found:
            return None
        original_key, fingerprint = found[0].decode(), found[1].decode()
        if fingerprint != req.fingerprint():
            return Result(RC.DUPLICATE, message="RRN reused with other content")
        return original_key

    async def original_by_rrn(self, store: Store, req: Request) -> str | None:
        """For a reversal or void: the request key that first used this RRN in the original's
        message class. A reseller matches its original by RRN, and the original may have been
        retransmitted under a new STAN that field 90 names instead of the first one."""
        if not (req.rrn and req.original_key):
            return None
        message_class = req.original_key.split(":", 1)[0]
        held = await store.command("HGET", rrn_key(req.merchant, message_class, req.rrn), "key")
        return held.decode() if held else None

    async def settle(self, store: Store, req: Request, result: Result, reseller: Reseller,
                     now: float) -> None:
        kind = SETTLED.get(req.op)
        if kind is None or not result.approved:
            return
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        entry = {"time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "reseller": reseller.id,
                 "merchant": req.merchant, "terminal": req.terminal, "type": kind,
                 "rrn": req.rrn or "", "upc": req.upc or "", "serial": req.serial or "",
                 "card": mask_card(req.card), "amount": result.amount or req.amount,
                 "currency": result.currency or "", "response": result.code,
                 "auth": result.auth_id or "", "request_key": req.key}
        key = settlement_key(req.merchant, moment.strftime("%Y%m%d"))
        await store.run("settle", [key], [req.key, msgpack.packb(entry), SETTLEMENT_TTL])


async def settlement_rows(store: Store, config: Config, reseller_id: str,
                          day: dt.date) -> list[dict]:
    """Every settled entry of a reseller's merchants on a UTC day, in time order."""
    rows: list[dict] = []
    for merchant in config.merchants.values():
        if merchant.reseller != reseller_id:
            continue
        raw = await store.command("HGETALL", settlement_key(merchant.id, day.strftime("%Y%m%d")))
        rows.extend(msgpack.unpackb(v) for v in (raw or {}).values())
    return sorted(rows, key=lambda r: (r["time"], r["request_key"]))


def report_csv(rows: list[dict]) -> str:
    """The settlement CSV: a header row, then one row per entry, amounts in minor units."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in REPORT_COLUMNS})
    return out.getvalue()
