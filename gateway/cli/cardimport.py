"""`tillgate cards import FILE.csv [--program ID] [--code CODE]` (HOST-SPEC 5): batch creation,
confirmed with a one-time code sent by e-mail (docs/card-import.md).

Without --code: the file is checked whole (every problem by line number, exit 2, nothing
stored), then a code goes by e-mail to `imports.confirm_to` and the batch waits for it. With
--code: the same file, checked again, is applied once the code matches. A confirmed batch that
was interrupted is finished by running the command again; a batch already done changes nothing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.issuance import importbatch
from gateway.issuance.importfile import ImportBatch, ImportFileError, read_batch
from gateway.issuance.mailer import MailError, new_message, send_email
from gateway.ledger.store import Store
from gateway.ledger.storeconnect import store_session


def add_parser(sub, common) -> None:
    imp = sub.add_parser("import", parents=[common],
                         help="create a batch of cards from CSV, confirmed by an e-mailed code")
    imp.add_argument("file", metavar="FILE.csv", help="card,program,pin,amount (header row)")
    imp.add_argument("--program", help="program of every row without a program column")
    imp.add_argument("--code", help="the one-time code from the confirmation e-mail")
    imp.set_defaults(func=run)


def run(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    if not config.imports.confirm_to:
        return fail("cards import needs imports.confirm_to in the config: the address the "
                    "one-time code goes to")
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        return fail(f"cannot read {args.file}: {e.strerror}")
    try:
        batch = read_batch(data, config, args.program)
    except ImportFileError as e:
        for problem in e.problems:
            print(f"tillgate: {args.file}: {problem}", file=sys.stderr)
        print(f"tillgate: {args.file}: nothing imported ({len(e.problems)} problem(s))",
              file=sys.stderr)
        return 2
    return run_command(_import(config, batch, args.file, args.code))


async def _import(config: Config, batch: ImportBatch, name: str, code: str | None) -> int:
    async with store_session(config) as store:
        found = await importbatch.state_of(store, batch)
        state = found.get("state")
        if state == "done":
            print(f"{name}: already imported ({len(batch.rows)} cards); nothing changed")
            return 0
        if state != "confirmed":
            if code is None:
                return await _send_code(config, store, batch, name)
            refused = await _check_code(config, store, batch, code, found.get("salt", ""))
            if refused is not None:
                return refused
        return await _apply(config, store, batch, name)


async def _send_code(config: Config, store: Store, batch: ImportBatch, name: str) -> int:
    _owned, foreign = await importbatch.owned_and_foreign(store, batch)
    if foreign:
        for row in foreign[:20]:
            print(f"tillgate: {name}: line {row.line}: card already exists", file=sys.stderr)
        return fail(f"{name}: {len(foreign)} card(s) already exist; nothing imported")
    code = importbatch.new_code()
    minutes = config.imports.code_minutes
    await importbatch.start(store, batch, code, minutes * 60)
    message = new_message(config.email, list(config.imports.confirm_to),
                          "[tillgate] cards import: confirmation code",
                          importbatch.mail_body(batch, name, code, minutes,
                                                "the operator who ran `tillgate cards import`"))
    try:
        await asyncio.to_thread(send_email, config.email, message)
    except MailError as e:
        print(f"tillgate: the confirmation code could not be sent: {e}", file=sys.stderr)
        return 1
    print(f"{name}: {importbatch.summary(batch)}")
    if config.email.maildir is not None:  # no SMTP relay: the embedded default's maildir
        print(f"(no [email] relay configured: the message is in {config.email.maildir}/new/)")
    print(f"a confirmation code went to {', '.join(config.imports.confirm_to)}; "
          f"finish within {minutes} minutes with:\n"
          f"  tillgate cards import {name} --code CODE")
    return 0


async def _check_code(config: Config, store: Store, batch: ImportBatch, code: str,
                      salt: str) -> int | None:
    outcome, left = await importbatch.confirm(store, batch, code, salt, config.imports.max_tries)
    if outcome == "confirmed":
        return None
    if outcome == "wrong":
        return fail(f"wrong code; {left} tr{'y' if left == 1 else 'ies'} left")
    if outcome == "dropped":
        return fail("wrong code, and no tries left: the batch was dropped; run the command "
                    "without --code for a new code")
    return fail("no code is waiting for this file (expired, or the file changed since): run "
                "the command without --code for a new one")


async def _apply(config: Config, store: Store, batch: ImportBatch, name: str) -> int:
    try:
        created, activated = await importbatch.apply(store, config, batch)
    except importbatch.ApplyError as e:
        print(f"tillgate: {name}: {e}", file=sys.stderr)
        print(f"tillgate: {name}: stopped; the batch stays confirmed: run the same command "
              "again to finish it", file=sys.stderr)
        return 1
    print(f"{name}: imported: {importbatch.summary(batch)} ({created} created, "
          f"{activated} activated by this run)")
    return 0
