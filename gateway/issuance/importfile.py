"""`cards import FILE.csv`: the batch file, read and checked whole before anything is stored.

The file is CSV with a header row. Columns (any order; names are case-insensitive):

    card     the card number (required)
    program  the program id (required, unless the command gives --program)
    pin      the card's PIN: required by a program with PINs, refused by one without
    amount   an activation load (12.50, or whole points for loyalty programs); empty or absent:
             the card is issued inactive

Every problem is reported with its line number (the header is line 1) and nothing is stored
when there is one: numbers that do not fit their program, a number twice in the file, a PIN
of the wrong form, an amount the program would refuse. Card numbers appear in messages masked.
The batch is named by the SHA-256 of the file's bytes: the code sent by e-mail confirms that
exact file.
"""

from __future__ import annotations

import _csv  # the reader type (csv.reader returns one; it keeps line_num)
import csv
import hashlib
import io
from dataclasses import dataclass

from gateway.config.cardrules import number_fits
from gateway.config.model import Config, Program
from gateway.ledger.amounts import parse_amount
from protocols.model import mask_card

COLUMNS = ("card", "program", "pin", "amount")


class ImportFileError(ValueError):
    """What is wrong with the file, one line per problem (`line N: ...`)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    card: str
    program: Program
    pin: str | None
    amount: int | None  # None: issue inactive

    def __repr__(self) -> str:  # never the number or the PIN
        return f"ImportRow(line={self.line}, card={mask_card(self.card)}, " \
               f"program={self.program.id})"


@dataclass(frozen=True, slots=True)
class ImportBatch:
    digest: str  # SHA-256 of the file's bytes, hex
    rows: tuple[ImportRow, ...]

    @property
    def activations(self) -> int:
        return sum(1 for row in self.rows if row.amount is not None)

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per program: (cards, sum of activation amounts in minor units or points)."""
        out: dict[str, tuple[int, int]] = {}
        for row in self.rows:
            count, total = out.get(row.program.id, (0, 0))
            out[row.program.id] = (count + 1, total + (row.amount or 0))
        return out


def read_batch(data: bytes, config: Config, program_id: str | None = None) -> ImportBatch:
    """The batch in `data`, or ImportFileError naming every problem by line."""
    default_program = None
    if program_id is not None:
        default_program = config.programs.get(program_id)
        if default_program is None:
            raise ImportFileError([f"unknown program {program_id!r} "
                                   f"(have: {', '.join(config.programs)})"])
    reader, header = csv_with_header(data)
    problems = _header_problems(header, default_program)
    if problems:
        raise ImportFileError(problems)
    rows: list[ImportRow] = []
    first_line: dict[str, int] = {}
    limit = config.imports.max_rows
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank lines are allowed (a trailing one is common)
        if len(rows) == limit:
            problems.append(f"line {line}: more than {limit} cards in one batch "
                            "(imports.max_rows)")
            break
        row, row_problems = _row(line, dict(zip(header, values, strict=False)), len(values),
                                 len(header), config, default_program)
        problems.extend(row_problems)
        if row is None:
            continue
        if row.card in first_line:
            problems.append(f"line {line}: card {mask_card(row.card)} repeats line "
                            f"{first_line[row.card]}")
            continue
        first_line[row.card] = line
        rows.append(row)
    if not rows and not problems:
        problems.append("no cards in the file")
    if problems:
        raise ImportFileError(problems)
    return ImportBatch(hashlib.sha256(data).hexdigest(), tuple(rows))


def csv_with_header(data: bytes) -> tuple[_csv.Reader, list[str]]:
    """The rows of a UTF-8 CSV file (a byte-order mark allowed) after its header, and the header
    in lower case; ImportFileError when the bytes are not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportFileError([f"not UTF-8 text (byte {e.start})"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    return reader, [name.strip().lower() for name in next(reader, [])]


def column_problems(header: list[str], columns: tuple[str, ...]) -> list[str]:
    """A CSV header's unknown and repeated columns, each named on line 1."""
    problems = [f"line 1: unknown column {name!r} (columns: {', '.join(columns)})"
                for name in header if name not in columns]
    problems += [f"line 1: column {name!r} appears twice"
                 for name in sorted(set(header)) if header.count(name) > 1]
    return problems


def _header_problems(header: list[str], default_program: Program | None) -> list[str]:
    if not header:
        return ["line 1: the header row is missing (card,program,pin,amount)"]
    problems = column_problems(header, COLUMNS)
    if "card" not in header:
        problems.append("line 1: no card column")
    if "program" not in header and default_program is None:
        problems.append("line 1: no program column (or give --program)")
    return problems


def _row(line: int, cells: dict[str, str], width: int, header_width: int, config: Config,
         default_program: Program | None) -> tuple[ImportRow | None, list[str]]:
    if width != header_width:
        return None, [f"line {line}: {width} fields, the header has {header_width}"]
    card = cells.get("card", "").strip()
    if not card:
        return None, [f"line {line}: card is empty"]
    program_id = cells.get("program", "").strip()
    program = config.programs.get(program_id) if program_id else default_program
    if program is None:
        known = ", ".join(config.programs)
        return None, [f"line {line}: unknown program {program_id!r} (have: {known})"
                      if program_id else f"line {line}: program is empty"]
    problems = []
    if not number_fits(program, card):
        problems.append(f"line {line}: card {mask_card(card)} does not fit program "
                        f"{program.id!r} (length, prefix or range, check digit)")
    pin = _pin(line, cells.get("pin", "").strip(), program, problems)
    amount = _amount(line, cells.get("amount", "").strip(), program, problems)
    if problems:
        return None, problems
    return ImportRow(line, card, program, pin, amount), []


def _pin(line: int, pin: str, program: Program, problems: list[str]) -> str | None:
    if not program.pin_required:
        if pin:
            problems.append(f"line {line}: program {program.id!r} has no PINs; pin must be "
                            "empty")
        return None
    if not (pin.isascii() and pin.isdigit() and len(pin) == program.pin_length):
        problems.append(f"line {line}: pin must be {program.pin_length} digits "
                        f"(program {program.id!r})")
        return None
    return pin


def _amount(line: int, text: str, program: Program, problems: list[str]) -> int | None:
    """The activation load, checked against the rules the activation script will apply."""
    if not text:
        return None
    try:
        amount = parse_load(text, program)
    except ValueError as e:
        problems.append(f"line {line}: {e}")
        return None
    refused = amount_problem(program, amount)
    if refused:
        problems.append(f"line {line}: {refused}")
    return amount


def parse_load(text: str, program: Program) -> int:
    """A load as the operator writes it: `12.50` (minor units 1250), whole points for loyalty."""
    if program.is_loyalty:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"points {text!r}: expected a whole number")
        return int(text)
    return parse_amount(text)


def amount_problem(program: Program, amount: int) -> str | None:
    """Why the activation script would refuse this load on a new card of `program`, or None
    (also `cards activate`: gateway/issuance/activatefile.py)."""
    if program.is_loyalty and amount:
        return "a loyalty card is activated without points (amount must be empty or 0)"
    if amount < program.min_activation:
        return "amount below the program's minimum activation"
    if program.max_transaction and amount > program.max_transaction:
        return "amount over the program's single transaction limit"
    if program.max_balance and amount > program.max_balance:
        return "amount over the program's maximum balance"
    return None
