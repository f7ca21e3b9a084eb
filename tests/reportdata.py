"""A small back office for the report tests: journal rows as the feed writes them, customers
and card holders, on a real SQLite or PostgreSQL (`backoffice_url`), and the config the reports
read (the default config, plus a yen program: a currency with no decimals).

The rows sit on the edges of 24 November 2026 (UTC): one second before it, its first second,
its last second, and the first second of the next day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert

from gateway.backoffice import schema, summaries
from gateway.backoffice.connect import backoffice_session
from gateway.backoffice.summaries import configured_zones
from gateway.config.defaults import DEFAULT_CONFIG_PATH
from gateway.config.model import Config, parse_config
from gateway.testing import config_text

YEN = """
[programs.yen]
kind = "gift"
currency = "392"
card_length = 16
prefix = "603955"
luhn = true
"""


def at(text: str) -> int:
    """`2026-11-24 00:00:00` (UTC) -> epoch seconds."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


CARD_A, CARD_B, CARD_L, CARD_Y = "a" * 32, "b" * 32, "c" * 32, "d" * 32
MASK = {CARD_A: "603953*********0018", CARD_B: "603953*********0026",
        CARD_L: "77******12", CARD_Y: "603955******0011"}
PROGRAM = {CARD_A: "gift", CARD_B: "gift", CARD_L: "loyalty", CARD_Y: "yen"}

# (card, seq, op, dv, dp, bal, pts, terminal, merchant, key, time)
ENTRIES = [
    (CARD_A, 1, "activate", 2500, 0, 2500, 0, "BHN00001", "BHNRESELLER0001", "bhn-1",
     "2026-11-23 23:59:59"),
    (CARD_A, 2, "redeem", -1250, 0, 1250, 0, "TILL0001", "STORE0000000001", "k-a2",
     "2026-11-24 00:00:00"),
    (CARD_B, 1, "activate", 5000, 0, 5000, 0, "TILL0002", "STORE0000000001", "k-b1",
     "2026-11-24 10:00:00"),
    (CARD_L, 1, "earn", 0, 120, 0, 120, "TILL0001", "STORE0000000001", "k-l1",
     "2026-11-24 12:00:00"),
    (CARD_Y, 1, "activate", 3000, 0, 3000, 0, "BHN00001", "BHNRESELLER0001", "bhn-2",
     "2026-11-24 13:00:00"),
    (CARD_B, 2, "redeem", -1999, 0, 3001, 0, "TILL0001", "STORE0000000001", "k-b2",
     "2026-11-24 23:59:59"),
    (CARD_A, 3, "reload", 1000, 0, 2250, 0, "TILL0002", "STORE0000000001", "k-a3",
     "2026-11-25 00:00:00"),
]


def journal_rows(entries=ENTRIES) -> list[dict]:
    return [{"card_id": card, "entry_id": f"{at(when) * 1000}-{seq}", "seq": seq, "op": op,
             "card_mask": MASK[card], "program": PROGRAM[card], "dv": dv, "dp": dp, "bal": bal,
             "pts": pts, "terminal": term, "merchant": merch, "request_key": key,
             "t": at(when), "undo": None, "tier": None, "tier_from": None}
            for card, seq, op, dv, dp, bal, pts, term, merch, key, when in entries]


def config_for(url: str, tmp_path: Path) -> Config:
    return parse_config(_toml(url, tmp_path), "reportdata")


def config_file(url: str, tmp_path: Path) -> Path:
    path = tmp_path / "tillgate.toml"
    path.write_text(config_toml(url, tmp_path))
    return path


def config_toml(url: str, tmp_path: Path, extra: str = "") -> str:
    return config_text(DEFAULT_CONFIG_PATH, data_dir=str(tmp_path / "var"), ports={},
                       extra=f'{YEN}\n[backoffice]\nurl = "{url}"\n{extra}')


def _toml(url: str, tmp_path: Path) -> dict:
    import tomllib

    return tomllib.loads(config_toml(url, tmp_path))


async def fill(config: Config, rows: list[dict] | None = None) -> None:
    """Migrate the back office and write the journal rows, two customer types, three customers
    (C1 gold: cards A and L; C2 basic: card B; C3 gold: no card) and their cards."""
    types = [{"id": 1, "name": "gold", "default_program": "loyalty", "description": ""},
             {"id": 2, "name": "basic", "default_program": "gift", "description": ""}]
    people = [{"id": n, "code": f"C{n}", "name": name, "customer_type_id": kind,
               "created_t": at("2026-01-01 00:00:00")}
              for n, name, kind in ((1, "Ada Lovelace", 1), (2, "Alan Turing", 2),
                                    (3, "Grace Hopper", 1))]
    holders = [{"card_id": card, "customer_id": who, "card_mask": MASK[card],
                "program": PROGRAM[card], "linked_t": at("2026-01-01 00:00:00"),
                "linked_by": "test"} for card, who in ((CARD_A, 1), (CARD_L, 1), (CARD_B, 2))]
    async with backoffice_session(config) as engine:
        async with engine.begin() as conn:
            await conn.execute(insert(schema.journal_entries), journal_rows() if rows is None
                               else rows)
            # as the feed would have summed them (it writes the journal and the summaries)
            await conn.run_sync(summaries.rebuild, configured_zones(config.programs))
            await conn.execute(insert(schema.customer_types), types)
            await conn.execute(insert(schema.customers), people)
            await conn.execute(insert(schema.card_holders), holders)
