"""Clubs (`[clubs.<name>]`): who may use a program's cards, tills and people alike.

    [clubs.north]
    programs = ["loyalty"]               # the programs whose cards the club holds
    merchants = ["STORE0000000001"]      # the merchants in it
    terminals = ["TILL0001"]             # optional: only these tills of those merchants

A program's clubs are its named clubs (every `[clubs.*]` listing it) and its unnamed one, the
older `programs.<id>.merchants` list (every till of those merchants). A program in no club is
open to every merchant. A till is admitted to a program when one of its clubs admits it, and
refused with 58 otherwise (gateway/ledger/checks.precheck).

The clubs are compiled at config load into what the hot path checks, once per program: the set
of admitted terminals (`Program.club_terminals`, None when the program is open), so a till's
request costs one set lookup however many clubs there are. People get the same answer from
`Program.club_merchants` (managers: their merchant is in one of the clubs) and
`Program.clubs` (staff: named clubs bind staff by membership, kept in the back office,
gateway/backoffice/operators.py; see gateway/web/portal/cardlookup.may_see).

A config reload recompiles everything, so club changes apply from the next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gateway.config.sections import Section

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")  # kept space-separated in the back office


@dataclass(frozen=True, slots=True)
class Club:
    name: str
    programs: tuple[str, ...]
    merchants: tuple[str, ...]
    terminals: tuple[str, ...] = ()  # empty: every terminal of its merchants


def read_clubs(top: Section, merchant_terminals: dict[str, tuple[str, ...]],
               program_ids: set[str]) -> dict[str, Club]:
    """Every `[clubs.<name>]`, checked against the merchants (and their terminals) and the
    programs; errors name their path, e.g. clubs.north.terminals."""
    clubs: dict[str, Club] = {}
    for name, s in top.tables("clubs").items():
        if not NAME.match(name):
            s.error("", "a club's name is 1 to 32 of A-Z a-z 0-9 _ . -")
        programs = tuple(s.array("programs"))
        merchants = tuple(s.array("merchants"))
        terminals = tuple(s.array("terminals", []))
        s.reject_unknown()
        if "programs" in s.data and not programs:
            s.error("programs", "name at least one program")
        if "merchants" in s.data and not merchants:
            s.error("merchants", "name at least one merchant")
        for pid in programs:
            if pid not in program_ids:
                s.error("programs", f"unknown program {pid!r}")
        for mid in merchants:
            if mid not in merchant_terminals:
                s.error("merchants", f"unknown merchant {mid!r}")
        theirs = {t for m in merchants for t in merchant_terminals.get(m, ())}
        for term in terminals:
            if term not in theirs:
                s.error("terminals", f"terminal {term!r} is not a terminal of the club's "
                                     f"merchants")
        clubs[name] = Club(name, programs, merchants, terminals)
    return clubs


def compile_clubs(programs: dict, clubs: dict[str, Club],
                  merchant_terminals: dict[str, tuple[str, ...]]) -> dict:
    """The programs with their clubs compiled in: `club_terminals` (the tills admitted, None
    when open to all), `club_merchants` (the merchants of any club) and `clubs` (the named
    clubs, each with its merchants)."""
    out = {}
    for pid, program in programs.items():
        named = [c for c in clubs.values() if pid in c.programs]
        if not named and not program.merchants:
            out[pid] = program
            continue
        terminals: set[str] = {t for m in program.merchants
                               for t in merchant_terminals.get(m, ())}
        merchants: set[str] = set(program.merchants)
        for club in named:
            merchants.update(club.merchants)
            terminals.update(club.terminals or (t for m in club.merchants
                                                for t in merchant_terminals.get(m, ())))
        out[pid] = replace(program, club_terminals=frozenset(terminals),
                           club_merchants=frozenset(merchants),
                           clubs=tuple((c.name, frozenset(c.merchants)) for c in named))
    return out
