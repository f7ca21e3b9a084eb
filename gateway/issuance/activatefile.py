"""`cards activate`: which issued cards a batch activates, and with what, checked before the store.

A batch is one program's cards, from one of:

- a CSV file with a header row: `card` (required) and `amount` (optional: a load per card,
  `12.50`, or whole points for loyalty programs, where only 0 is allowed); an empty or absent
  amount takes the command's `--amount`;
- a range `--first N --last M`: every number of the program from N to M, both included (with a
  Luhn check digit, one number in ten), all with `--amount`;
- the body of `POST /v1/cards/activate` (gateway/admin/activate.py), amounts in minor units.

Every problem is named by its line (the header is line 1; a range's cards are numbered from 1)
and nothing is activated when there is one. What only the store knows (is the card issued, of
this program, not yet active?) is checked by gateway/issuance/activatebatch.py.

The batch id is the SHA-256 of the program and the (card, amount) pairs in order: the same batch
sent again is the same batch, and its activations replay instead of loading twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.config.cardrules import number_fits
from gateway.config.model import Config, Program
from gateway.issuance.importfile import (
    ImportFileError,
    amount_problem,
    column_problems,
    csv_with_header,
    parse_load,
)
from protocols.carddata import luhn_check_digit
from protocols.model import mask_card

COLUMNS = ("card", "amount")


@dataclass(frozen=True, slots=True)
class ActivationRow:
    line: int
    card: str
    amount: int

    def __repr__(self) -> str:  # never the whole number
        return f"ActivationRow(line={self.line}, card={mask_card(self.card)}, " \
               f"amount={self.amount})"


@dataclass(frozen=True, slots=True)
class ActivationBatch:
    program: Program
    rows: tuple[ActivationRow, ...]
    id: str  # batch_id(program, rows): computed once, every request key holds it

    @classmethod
    def of(cls, program: Program, rows: tuple[ActivationRow, ...]) -> ActivationBatch:
        return cls(program, rows, batch_id(program, rows))

    @property
    def total(self) -> int:
        return sum(row.amount for row in self.rows)


def batch_id(program: Program, rows: tuple[ActivationRow, ...]) -> str:
    """SHA-256 of the program and the (card, amount) pairs in order, hex."""
    digest = hashlib.sha256(f"activate:{program.id}\n".encode())
    for row in rows:
        digest.update(f"{row.card},{row.amount}\n".encode())
    return digest.hexdigest()


def program_of(config: Config, program_id: str) -> Program:
    program = config.programs.get(program_id)
    if program is None:
        raise ImportFileError([f"unknown program {program_id!r} "
                               f"(have: {', '.join(config.programs)})"])
    return program


def default_amount(program: Program, given: str | int | None) -> int | None:
    """The batch's amount (`--amount 12.50`, or minor units from JSON), checked; None when not
    given (a loyalty program's default is 0: its cards are activated without points)."""
    if given is None:
        return 0 if program.is_loyalty else None
    if isinstance(given, int):
        amount = given
    else:
        try:
            amount = parse_load(given.strip(), program)
        except ValueError as e:
            raise ImportFileError([f"amount: {e}"]) from None
    refused = amount_problem(program, amount)
    if refused:
        raise ImportFileError([f"amount: {refused}"])
    return amount


def read_file(data: bytes, config: Config, program_id: str,
              amount: str | None = None) -> ActivationBatch:
    """The batch in a CSV file, or ImportFileError naming every problem by line."""
    program = program_of(config, program_id)
    fallback = default_amount(program, amount)
    reader, header = csv_with_header(data)
    problems = column_problems(header, COLUMNS)
    if "card" not in header:
        problems.append("line 1: no card column (card,amount)")
    if problems:
        raise ImportFileError(problems)
    entries: list[tuple[int, str, str | int | None]] = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue  # blank lines are allowed (a trailing one is common)
        if len(values) != len(header):
            problems.append(f"line {reader.line_num}: {len(values)} fields, the header has "
                            f"{len(header)}")
            continue
        cells = dict(zip(header, values, strict=True))
        entries.append((reader.line_num, cells["card"].strip(), cells.get("amount", "").strip()))
    return _batch(config, program, entries, fallback, problems)


def from_range(config: Config, program_id: str, first: str, last: str,
               amount: str | int | None = None) -> ActivationBatch:
    """Every number of the program from `first` to `last`, both included."""
    program = program_of(config, program_id)
    fallback = default_amount(program, amount)
    first, last = first.strip(), last.strip()
    problems = [f"--{name}: {mask_card(number)} is not a number of program {program.id!r}"
                for name, number in (("first", first), ("last", last))
                if not (number.isdigit() and number_fits(program, number))]
    if not problems and (len(first) != len(last) or first > last):
        problems.append("--first must not come after --last (and be as long)")
    if problems:
        raise ImportFileError(problems)
    body_end = -1 if program.luhn else None  # a Luhn number is its body and a check digit
    low, high = int(first[:body_end]), int(last[:body_end])
    width = len(first[:body_end])
    if high - low + 1 > config.imports.max_rows:
        raise ImportFileError([f"the range holds more than {config.imports.max_rows} cards "
                               "(imports.max_rows)"])
    entries: list[tuple[int, str, str | int | None]] = []
    for body in range(low, high + 1):
        card = str(body).rjust(width, "0")
        if program.luhn:
            card += str(luhn_check_digit(card))
        if number_fits(program, card):
            entries.append((len(entries) + 1, card, ""))
    return _batch(config, program, entries, fallback, [])


def from_amounts(config: Config, program_id: str,
                 entries: list[tuple[int, str, str | int | None]],
                 amount: int | None = None) -> ActivationBatch:
    """A batch whose amounts are already minor units (the admin API's JSON)."""
    program = program_of(config, program_id)
    return _batch(config, program, entries, default_amount(program, amount), [])


def _batch(config: Config, program: Program, entries: list[tuple[int, str, str | int | None]],
           fallback: int | None, problems: list[str]) -> ActivationBatch:
    rows: list[ActivationRow] = []
    first_line: dict[str, int] = {}
    limit = config.imports.max_rows
    for line, card, given in entries:
        if len(rows) == limit:
            problems.append(f"line {line}: more than {limit} cards in one batch "
                            "(imports.max_rows)")
            break
        row = _row(line, card, given, program, fallback, problems)
        if row is None:
            continue
        if card in first_line:
            problems.append(f"line {line}: card {mask_card(card)} repeats line "
                            f"{first_line[card]}")
            continue
        first_line[card] = line
        rows.append(row)
    if not rows and not problems:
        problems.append("no cards in the batch")
    if problems:
        raise ImportFileError(problems)
    return ActivationBatch.of(program, tuple(rows))


def _row(line: int, card: str, given: str | int | None, program: Program,
         fallback: int | None, problems: list[str]) -> ActivationRow | None:
    before = len(problems)
    if not card:
        problems.append(f"line {line}: card is empty")
    elif not number_fits(program, card):
        problems.append(f"line {line}: card {mask_card(card)} does not fit program "
                        f"{program.id!r} (length, prefix or range, check digit)")
    amount = fallback
    if isinstance(given, str) and given:
        try:
            amount = parse_load(given, program)
        except ValueError as e:
            problems.append(f"line {line}: {e}")
            return None
    elif isinstance(given, int):
        amount = given
    if amount is None:
        problems.append(f"line {line}: no amount (an amount column, or --amount)")
    else:
        refused = amount_problem(program, amount)
        if refused:
            problems.append(f"line {line}: {refused}")
    if len(problems) > before or amount is None:
        return None
    return ActivationRow(line, card, amount)
