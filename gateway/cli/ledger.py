"""`tillgate ledger records [packed|fields]`: show or set the layout a ledger's request records
are written in (gateway/ledger/recordlayout.py; docs/ledger.md "Request records").

Set `packed` once every gateway on the Redis runs a version that reads it (this one or later):
gateways read the mark when they connect, so each writes the new layout from its next start
(`serve` restarted; each CLI command connects anew; a config reload keeps the store, and the
layout it read); records of both layouts are read and undone by every gateway of this version
in the meantime."""

from __future__ import annotations

from gateway.cli.config import load_or_report
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.ledger.recordlayout import LAYOUTS


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("ledger", help="the ledger's formats in Redis")
    sub = parser.add_subparsers(dest="ledger_command", required=True)
    records = sub.add_parser("records", parents=[common],
                             help="show or set the layout request records are written in")
    records.add_argument("layout", nargs="?", choices=LAYOUTS,
                         help="packed (every gateway on this Redis reads it) or fields "
                              "(an older gateway still runs); none: show the mark")
    records.set_defaults(func=run_records)


def run_records(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    return run_command(_records(config, args.layout))


async def _records(config: Config, layout: str | None) -> int:
    from gateway.ledger import recordlayout
    from gateway.ledger.storeconnect import store_session

    async with store_session(config) as store:
        if layout is None:
            before = after = await recordlayout.ledger_layout(store)
        else:
            before, after = await recordlayout.set_layout(store, layout), layout
    if layout is None:
        print(f"request records: {after}")
    elif before == after:
        print(f"request records: {after} (unchanged)")
    else:
        print(f"request records: {before} -> {after}; each gateway writes {after} records "
              "from its next start")
    override = config.redis.packed_records
    if override is not None:
        print(f"note: this config's redis.packed_records = {str(override).lower()} overrides "
              "the mark for the gateways that run it")
    return 0
