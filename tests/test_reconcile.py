"""The matching rules of `tillgate resellers reconcile` (gateway/ledger/reconcile.py); the
command itself runs end to end in tests/test_resellers_cli.py."""

from __future__ import annotations

import pytest

from gateway.ledger.reconcile import (
    Entry,
    SettlementFileError,
    read_settlement_file,
    reconcile,
)

HEADER = "reseller,merchant,type,rrn,amount,request_key\n"


def entry(rrn: str, amount: int, kind: str = "activation", key: str = "") -> Entry:
    return Entry(merchant="M", type=kind, rrn=rrn, amount=amount, request_key=key)


def kinds(ours: list[Entry], theirs: list[Entry]) -> list[tuple[str, str, str]]:
    result = reconcile(ours, theirs)
    return [(d.kind, d.entry.type, d.entry.rrn) for d in result.differences]


def test_type_is_part_of_the_match():
    # a reversal carries its activation's RRN: the two are different transactions
    assert kinds([entry("1", 500), entry("1", 500, "reversal")], [entry("1", 500)]) == [
        ("missing_in_theirs", "reversal", "1")]


def test_a_transaction_listed_twice_is_one_too_many():
    result = reconcile([entry("1", 500)], [entry("1", 500), entry("1", 500)])
    assert result.agree == 1
    assert [(d.kind, d.theirs.amount if d.theirs else None) for d in result.differences] == [
        ("missing_in_ours", 500)]


def test_equal_amounts_pair_first():
    # ours settled 500 and 700 under one RRN (a profile without RRN matching); theirs 700, 900
    result = reconcile([entry("1", 500), entry("1", 700)], [entry("1", 700), entry("1", 900)])
    assert result.agree == 1
    assert [(d.kind, d.ours and d.ours.amount, d.theirs and d.theirs.amount)
            for d in result.differences] == [("amount", 500, 900)]


def test_an_empty_rrn_matches_by_request_key():
    assert kinds([entry("", 500, key="K1")], [entry("", 500, key="K1")]) == []
    assert kinds([entry("", 500, key="K1")], [entry("", 500, key="K2")]) == [
        ("missing_in_ours", "activation", ""), ("missing_in_theirs", "activation", "")]


def test_lines_are_named_as_in_the_file():
    text = (HEADER + 'blackhawk,M,activation,1,500,"a\nquoted key"\n\n'
            "blackhawk,M,activation,2,500,K\r\n")
    entries = read_settlement_file(text, "blackhawk")
    assert [(e.rrn, e.line) for e in entries] == [("1", 2), ("2", 5)]
    with pytest.raises(SettlementFileError, match=r"^line 5: no rrn"):
        read_settlement_file(text.replace(",2,500,", ",,500,").replace(",K\r", ",\r"),
                             "blackhawk")
    with pytest.raises(SettlementFileError, match=r"^line 2: merchant is empty"):
        read_settlement_file(HEADER + "blackhawk,,activation,1,500,K\n", "blackhawk")
