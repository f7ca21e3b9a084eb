"""Reconciliation of a reseller's settlement file with our settlement record of the same day.

The reseller's file has the format of our own report (`tillgate resellers report`, columns
REPORT_COLUMNS of gateway/ledger/resellers.py); a network's own format is to be mapped onto it.
Of its columns `merchant`, `type`, `rrn` and `amount` are required, `request_key` stands in for
an empty RRN, the rest is shown or ignored. A transaction is matched by RRN and type within its
merchant: an RRN is claimed per merchant, and a reversal or a deactivation carries the RRN of
the activation it undoes. Matching is by count, so a transaction a file lists twice shows once
as agreed and once as missing on our side.

Pure functions: the caller reads the file and our rows (gateway/cli/resellers.py).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.ledger.resellers import SETTLED

SETTLED_TYPES = tuple(sorted(set(SETTLED.values())))  # activation, deactivation, reversal
REQUIRED_COLUMNS = ("merchant", "type", "rrn", "amount")

MISSING_IN_THEIRS = "missing_in_theirs"
MISSING_IN_OURS = "missing_in_ours"
AMOUNT = "amount"


class SettlementFileError(ValueError):
    """A file that cannot be reconciled; `line` names the line (1 is the header)."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Entry:
    """One settled transaction of either side; `line` is its line in the reseller's file."""

    merchant: str
    type: str
    rrn: str
    amount: int
    card: str = ""
    request_key: str = ""
    line: int | None = None

    @property
    def match_key(self) -> tuple[str, str, str]:
        return (self.merchant, self.type, self.rrn or f"key {self.request_key}")


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str  # MISSING_IN_THEIRS, MISSING_IN_OURS or AMOUNT
    ours: Entry | None
    theirs: Entry | None

    @property
    def entry(self) -> Entry:
        held = self.ours or self.theirs
        assert held is not None
        return held

    def as_dict(self) -> dict[str, object]:
        entry = self.entry
        return {"difference": self.kind, "merchant": entry.merchant, "type": entry.type,
                "rrn": entry.rrn, "ours": self.ours.amount if self.ours else None,
                "theirs": self.theirs.amount if self.theirs else None,
                "line": self.theirs.line if self.theirs else None, "card": entry.card,
                "request_key": entry.request_key}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    ours: int
    theirs: int
    agree: int
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def our_entries(rows: Iterable[dict]) -> list[Entry]:
    """Our settlement rows (gateway.ledger.resellers.settlement_rows) as entries."""
    return [Entry(merchant=r["merchant"], type=r["type"], rrn=r.get("rrn") or "",
                  amount=int(r["amount"]), card=r.get("card") or "",
                  request_key=r.get("request_key") or "") for r in rows]


def read_settlement_file(text: str, reseller: str) -> list[Entry]:
    """The entries of a reseller's settlement file (our report's CSV); SettlementFileError
    names the first line that is not one. Blank lines are skipped."""
    lines = text.splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise SettlementFileError(1, "empty file, expected the header row of "
                                     "`tillgate resellers report`")
    reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader)]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise SettlementFileError(1, f"no column {', '.join(missing)} in the header (the "
                                         "format is `tillgate resellers report`'s CSV)")
        entries: list[Entry] = []
        start = reader.line_num + 1  # a quoted field may span lines: a row is named by its first
        for values in reader:
            line, start = start, reader.line_num + 1
            if not values:
                continue
            if len(values) != len(header):
                raise SettlementFileError(line, f"{len(values)} fields, the header has "
                                                f"{len(header)}")
            entries.append(_entry(dict(zip(header, values)), reseller, line))
    except csv.Error as e:
        raise SettlementFileError(reader.line_num, f"not CSV: {e}") from None
    return entries


def _entry(row: dict[str, str], reseller: str, line: int) -> Entry:
    if row.get("reseller", reseller) not in (reseller, ""):
        raise SettlementFileError(line, f"reseller {row['reseller']!r}, not {reseller!r}")
    kind = row["type"].strip()
    if kind not in SETTLED_TYPES:
        raise SettlementFileError(line, f"type {kind!r} is not {', '.join(SETTLED_TYPES)}")
    if not row["merchant"].strip():
        raise SettlementFileError(line, "merchant is empty")
    amount = row["amount"].strip()
    if not (amount.isascii() and amount.isdigit()):
        raise SettlementFileError(line, f"amount {amount!r} is not a whole number of minor "
                                        "units")
    rrn, request_key = row["rrn"].strip(), row.get("request_key", "").strip()
    if not (rrn or request_key):
        raise SettlementFileError(line, "no rrn (and no request_key to match by instead)")
    return Entry(merchant=row["merchant"].strip(), type=kind, rrn=rrn, amount=int(amount),
                 card=row.get("card", "").strip(), request_key=request_key, line=line)


def reconcile(ours: list[Entry], theirs: list[Entry]) -> Reconciliation:
    """Match both sides by (merchant, type, RRN); within one key, equal amounts pair first,
    then the rest pair as amount differences, and what is left is missing on the other side."""
    theirs_by_key: dict[tuple[str, str, str], list[Entry]] = defaultdict(list)
    for entry in theirs:
        theirs_by_key[entry.match_key].append(entry)
    agree = 0
    unmatched_ours: list[Entry] = []
    for entry in ours:
        candidates = theirs_by_key.get(entry.match_key, [])
        same = next((t for t in candidates if t.amount == entry.amount), None)
        if same is None:
            unmatched_ours.append(entry)
        else:
            candidates.remove(same)
            agree += 1
    differences: list[Difference] = []
    for entry in unmatched_ours:
        candidates = theirs_by_key.get(entry.match_key, [])
        if candidates:
            differences.append(Difference(AMOUNT, entry, candidates.pop(0)))
        else:
            differences.append(Difference(MISSING_IN_THEIRS, entry, None))
    differences += [Difference(MISSING_IN_OURS, None, t)
                    for left in theirs_by_key.values() for t in left]
    differences.sort(key=lambda d: (d.entry.merchant, d.entry.rrn, d.entry.type, d.kind))
    return Reconciliation(len(ours), len(theirs), agree, differences)
