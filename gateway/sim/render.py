"""A reply for people (an aligned table, card masked) and for programs (JSON), and RC meanings."""

from __future__ import annotations

import json
from typing import Any

from gateway.ledger.amounts import format_amount
from gateway.sim.messages import POINTS_AMOUNT_OPS, Call, Exchange, safe_request
from protocols.model import mask_card

# HOST-SPEC 2.5, as a till operator reads them.
RC_MEANINGS = {
    "00": "approved", "10": "partial approval", "05": "do not honour",
    "12": "invalid transaction", "13": "invalid amount", "14": "unknown card",
    "25": "original not found", "30": "format error", "41": "card is lost",
    "51": "insufficient funds or points", "54": "card expired", "55": "incorrect PIN",
    "58": "terminal not permitted", "61": "amount limit exceeded", "62": "card suspended or locked",
    "65": "velocity limit exceeded", "75": "PIN tries exceeded: card locked",
    "78": "card not active", "91": "gateway overloaded", "94": "duplicate",
    "96": "system error",
}


def rc_text(rc: str | None) -> str:
    if rc is None:
        return "(none)"
    return f"{rc} {RC_MEANINGS.get(rc, 'unknown code')}"


def exchange_dict(exchange: Exchange) -> dict[str, Any]:
    """Everything about one exchange that may be shown: no whole card number, no PIN."""
    reply = exchange.reply
    out: dict[str, Any] = {
        "op": exchange.call.op.value,
        "seq": exchange.seq,
        "card": mask_card(exchange.call.card) if exchange.call.card else None,
        "request": safe_request(exchange.request),
        "ms": round(exchange.seconds * 1000, 3),
    }
    if reply is not None:
        out.update(reply.as_dict())
        out["rc_text"] = RC_MEANINGS.get(reply.rc or "", None)
        out["response"] = safe_request(reply.fields)
    return out


def as_json(exchange: Exchange) -> str:
    return json.dumps(exchange_dict(exchange), indent=2, sort_keys=False)


def _money(value: int | None) -> str | None:
    return None if value is None else format_amount(value)


def table_rows(exchange: Exchange) -> list[tuple[str, str]]:
    call, reply = exchange.call, exchange.reply
    points_op = call.op in POINTS_AMOUNT_OPS
    rows: list[tuple[str, str | None]] = [
        ("operation", call.op.value),
        ("sequence", exchange.seq),
        ("sent at (field 7)", exchange.request.get("7")),
        ("card", mask_card(call.card) if call.card else None),
        ("card data", _card_data(call)),
        ("target card", mask_card(call.target) if call.target else None),
        ("amount asked", None if call.amount is None else
         (str(call.amount) if points_op else format_amount(call.amount))),
    ]
    if reply is None:
        rows.append(("response", "(none)"))
    else:
        rows += [
            ("response code", rc_text(reply.rc)),
            ("amount approved", None if reply.amount is None or not reply.approved else
             (str(reply.amount) if points_op else format_amount(reply.amount))),
            ("balance", _money(reply.balance)),
            ("points", None if reply.points is None else str(reply.points)),
            ("auth id", reply.auth),
            ("tier", reply.tier),
            ("expiry", reply.expiry),
            ("message", reply.message),
        ]
    rows.append(("round trip", f"{exchange.seconds * 1000:.1f} ms"))
    return [(k, v) for k, v in rows if v is not None]


def _card_data(call: Call) -> str | None:
    """Which reader input was sent instead of a number (never its content: it holds the PAN)."""
    given = [name for name, value in (("track 2", call.track2), ("track 1", call.track1),
                                      ("swipe", call.swipe), ("barcode", call.barcode))
             if value is not None]
    return ", ".join(given) + " (not shown)" if given else None


def as_table(exchange: Exchange) -> str:
    rows = table_rows(exchange)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
