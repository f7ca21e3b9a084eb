"""Journal rows for the analytics and staff report tests: reportdata's rows (gift, loyalty and
yen cards on the edges of 24 November 2026, UTC) and loyalty entries made by staff members
(`opid`), a reward claim among them, as the feed writes them."""

from __future__ import annotations

from reportdata import CARD_L, MASK, at, journal_rows

CARD_M = "e" * 32
MASKS = {**MASK, CARD_M: "77******34"}

# (card, seq, op, dp, pts, opid, reward, merchant, time)
STAFF_ENTRIES = [
    (CARD_L, 2, "earn", 200, 320, "ANNA", None, "STORE0000000001", "2026-11-24 14:00:00"),
    (CARD_L, 3, "redeem_points", -100, 220, "ANNA", "MUG", "STORE0000000001",
     "2026-11-24 15:00:00"),
    (CARD_M, 1, "earn", 50, 50, "ANNA", None, "STORE0000000001", "2026-11-25 09:00:00"),
    (CARD_M, 2, "add_points", 25, 75, "BERT", None, "OTHERSTORE00001", "2026-11-30 09:00:00"),
    (CARD_M, 3, "redeem_points", -30, 45, "BERT", None, "OTHERSTORE00001",
     "2026-12-01 09:00:00"),  # points spent at a till, no reward: not a reward redeemed
]


def rows() -> list[dict]:
    found = [{**r, "opid": None, "reward": None} for r in journal_rows()]
    for card, seq, op, dp, pts, opid, reward, merchant, when in STAFF_ENTRIES:
        found.append({"card_id": card, "entry_id": f"{at(when) * 1000}-{seq}", "seq": seq,
                      "op": op, "card_mask": MASKS[card], "program": "loyalty", "dv": 0,
                      "dp": dp, "bal": 0, "pts": pts, "terminal": "TILL0001",
                      "merchant": merchant, "request_key": f"s-{card[0]}{seq}", "t": at(when),
                      "undo": None, "tier": None, "tier_from": None, "opid": opid,
                      "reward": reward})
    return found
