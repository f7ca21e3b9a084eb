"""`tillgate cards artwork BATCH.csv --program ID --out PRINTER.csv [--proof DIR] ...`: the card
printer's file, the PIN mailer file and the proof sheet of a batch (docs/artwork.md).

BATCH.csv is what `tillgate cards issue --out` wrote (a `card` column, a `pin` column). The
command reads only files and the config: it needs no store, so it runs where the files go out.
The batch is checked whole (numbers against the program's rules, PINs, every track) before
anything is written; every file it writes is new and mode 0600. Exit 0, or 2 with one line
saying what is wrong and nothing written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from functools import partial

from gateway.cli.config import config_and_program
from gateway.cli.main import fail
from gateway.issuance import printfile
from gateway.issuance.artwork import (
    BatchError,
    CardArt,
    Layout,
    check_layout,
    default_name,
    read_batch,
)
from gateway.issuance.pgp import EncryptError, encrypt

PIN_CHOICES = ("include", "mailer", "omit")


def add_parser(sub, common) -> None:
    art = sub.add_parser("artwork", parents=[common],
                         help="a batch's card printer file, PIN mailer file and proof sheet")
    art.add_argument("batch", metavar="BATCH.csv",
                     help="the batch: `cards issue --out` output (card,pin,... with a header)")
    art.add_argument("--program", required=True, help="program of every card of the batch")
    art.add_argument("--out", required=True, metavar="PRINTER.csv",
                     help="the manufacturer file to write (new; mode 0600)")
    art.add_argument("--pins", choices=PIN_CHOICES,
                     help="where the PINs go: in the printer file, in a separate PIN mailer "
                          "file (--pin-mailer), or nowhere; required when the program has PINs")
    art.add_argument("--pin-mailer", metavar="MAILER.csv",
                     help="the PIN mailer file to write with --pins mailer (new; mode 0600)")
    art.add_argument("--encrypt-to", metavar="KEY",
                     help="encrypt the printer and PIN mailer files to this OpenPGP key (gpg: "
                          "a key id, fingerprint or e-mail address in your keyring)")
    art.add_argument("--proof", metavar="DIR",
                     help="write the proof sheet here: proof-0001.svg, ... (10 cards a page)")
    art.add_argument("--proof-cards", type=int, metavar="N",
                     help="only the first N cards on the proof sheet (default: every card)")
    art.add_argument("--tracks", default="1,2", metavar="1,2,3",
                     help="stripe tracks to write (default 1,2); numbers with letters get "
                          "track 1 only")
    art.add_argument("--name", metavar="TEXT",
                     help="track 1 name field, 2-26 characters (default: '<PROGRAM> CARD')")
    art.add_argument("--expiry", metavar="YYMM", help="expiry on the stripe (default: none)")
    art.add_argument("--service-code", metavar="NNN",
                     help="service code on tracks 1 and 2 (default: none)")
    art.add_argument("--lrc", action="store_true",
                     help="write each track's LRC character after its end sentinel")
    art.set_defaults(func=run)


def _layout(args, program) -> Layout:
    try:
        tracks = tuple(sorted({int(t) for t in args.tracks.split(",")}))
    except ValueError:
        raise ValueError("--tracks: one or more of 1, 2, 3, comma-separated") from None
    return Layout(tracks=tracks, name=args.name or default_name(program), expiry=args.expiry,
                  service_code=args.service_code, with_lrc=args.lrc)


def _pins_choice(args, program) -> str | None:
    """The PIN choice, or None after saying what is missing."""
    if args.pins == "mailer" and not args.pin_mailer:
        fail("--pins mailer needs --pin-mailer FILE")
        return None
    if args.pin_mailer and args.pins != "mailer":
        fail("--pin-mailer goes with --pins mailer")
        return None
    if args.pins is None:
        if program.pin_required:
            fail(f"program {program.id!r} has PINs: choose --pins include, mailer or omit")
            return None
        return "omit"
    return str(args.pins)


def run(args) -> int:
    loaded = config_and_program(args.config, args.program)
    if loaded is None:
        return 2
    config, program = loaded
    pins = _pins_choice(args, program)
    if pins is None:
        return 2
    if args.proof_cards is not None and args.proof_cards < 1:
        return fail("--proof-cards must be at least 1")
    try:
        layout = _layout(args, program)
        check_layout(layout, program)
    except ValueError as e:
        return fail(str(e))
    try:
        with open(args.batch, encoding="utf-8", newline="") as source:
            cards = list(read_batch(source, program, layout))
    except OSError as e:
        return fail(f"cannot read {args.batch}: {e.strerror}")
    except UnicodeDecodeError:
        return fail(f"{args.batch}: not UTF-8 text")
    except BatchError as e:
        return fail(f"{args.batch}: {e}; nothing written")
    if not cards:
        return fail(f"{args.batch}: no cards; nothing written")
    return _write(args, cards, pins)


def _write(args, cards: list[CardArt], pins: str) -> int:
    """Every file, or none: what exists already is refused before the first write (it would
    keep its own mode), and what this run wrote is removed when a later write fails."""
    proof = cards[:args.proof_cards] if args.proof_cards else cards
    # (path, its text as lines): produced while writing, so that no file is ever held whole;
    # or (path, bytes) for a file encrypted before anything is written
    files: list[tuple[str, Callable[[], Iterable[str]] | bytes]] = [
        (args.out, lambda: printfile.csv_lines(printfile.printer_rows(cards, pins == "include")))]
    if pins == "mailer":
        files.append((args.pin_mailer,
                      lambda: printfile.csv_lines(printfile.mailer_rows(cards))))
    # The proof sheet's libraries (python-barcode brings Pillow when it is installed) are
    # imported when a proof is asked for, not by every `tillgate` command's parser.
    from gateway.issuance import proofsheet

    sealed = len(files) if args.encrypt_to else 0  # the CSV files; proofs stay readable
    proof_pages = proofsheet.pages(proof) if args.proof else 0
    for page in range(1, proof_pages + 1):
        files.append((os.path.join(args.proof, proofsheet.page_name(page)),
                      partial(_proof_page, proof, args.program.upper(), page, proof_pages)))
    for path, _ in files:
        if os.path.exists(path):
            return fail(f"{path} exists: the files hold card numbers (and PINs); remove it or "
                        "choose another name; nothing written")
    try:
        files[:sealed] = [(path, encrypt("".join(lines()).encode(), args.encrypt_to))
                          for path, lines in files[:sealed] if callable(lines)]
    except EncryptError as e:
        return fail(f"{e}; nothing written")
    written: list[str] = []
    try:
        if args.proof:
            os.makedirs(args.proof, mode=0o700, exist_ok=True)
        for path, content in files:
            written.append(path)
            if isinstance(content, bytes):
                printfile.write_private_bytes(path, content)
                continue
            with printfile.private_file(path) as out:
                out.writelines(content())
    except OSError as e:
        for path in written:
            if os.path.exists(path):
                os.unlink(path)
        return fail(f"cannot write {e.filename or path}: {e.strerror}; nothing written")
    _report(args, len(cards), pins, proof_pages)
    return 0


def _proof_page(cards: list[CardArt], title: str, page: int, pages: int) -> list[str]:
    from gateway.issuance import proofsheet

    per = proofsheet.CARDS_PER_PAGE
    return [proofsheet.page_svg(cards[(page - 1) * per:page * per], title, page, pages)]


def _report(args, count: int, pins: str, proof_pages: int) -> None:
    print(f"wrote {count} card(s) to {args.out}", file=sys.stderr)
    if args.encrypt_to:
        print(f"encrypted to {args.encrypt_to}: {args.out}"
              + (f", {args.pin_mailer}" if pins == "mailer" else ""), file=sys.stderr)
    elif pins == "include":
        print(f"tillgate: warning: {args.out} holds the PINs: send it to the card printer "
              "encrypted (--encrypt-to), and delete it once delivered", file=sys.stderr)
    if pins == "mailer":
        print(f"wrote {count} PIN mailer row(s) to {args.pin_mailer}: keep it apart from "
              f"{args.out}", file=sys.stderr)
    if args.proof:
        print(f"wrote {proof_pages} proof page(s) to {args.proof}", file=sys.stderr)
