"""Resellers end to end: a `tillgate serve` subprocess with both shipped profiles (Blackhawk and
InComm), POSA traffic over ISO 8583 from each network's terminal, then `tillgate resellers report`
and `tillgate resellers reconcile` run as an operator would, against the running gateway's store.

The gateway (module-scoped: starting one takes seconds) runs one settlement day of traffic in
`posa_day`; the tests then read what it answered, what it settled and how it reconciles.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.ledger.resellers import REPORT_COLUMNS
from gateway.sim.isoclient import IsoClient
from gateway.testing import GatewayProcess
from protocols.isobuild import request_fields, reversal_fields
from protocols.model import Op, iso_request_key, mask_card

BHN = {"terminal": "BHN00001", "merchant": "BHNRESELLER0001"}
INCOMM = {"terminal": "INC00001", "merchant": "INCOMMRESELL001"}
BHN_25 = "799366289999"  # Blackhawk: fixed $25.00
INCOMM_20 = "799366300014"  # InComm: fixed $20.00
INCOMM_VARIABLE = "799366300021"  # InComm: $5.00 - $250.00

# The default config has Blackhawk; InComm comes in by its shipped profile's name.
WITH_INCOMM = """
[merchants.INCOMMRESELL001]
name = "InComm Payments (reseller)"
terminals = ["INC00001"]
reseller = "incomm"

[resellers.incomm]
profile = "incomm"
"""


def tillgate(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway.command(*args), capture_output=True, text=True, timeout=60,
                          cwd=gateway.workdir)


def issue_cards(gateway: GatewayProcess, count: int) -> list[str]:
    done = tillgate(gateway, "cards", "issue", "--program", "gift", "--count", str(count))
    assert done.returncode == 0, done.stderr
    return [row["card"] for row in csv.DictReader(io.StringIO(done.stdout))]


def balance(gateway: GatewayProcess, card: str) -> int:
    shown = tillgate(gateway, "cards", "show", card, "--json")
    assert shown.returncode == 0, shown.stderr
    return int(json.loads(shown.stdout)["balance"])


def key_of(fields: dict[str, str]) -> str:
    """The request key the gateway gives an ISO request (HOST-SPEC 2.2)."""
    return iso_request_key(fields["t"], fields["41"], fields["42"], fields["11"], fields["7"])


@dataclass
class PosaDay:
    """What the gateway was sent and answered on one settlement day."""

    gateway: GatewayProcess
    day: str
    cards: dict[str, str]
    sent: dict[str, dict[str, str]] = field(default_factory=dict)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)

    def report(self, reseller: str, tmp_path: Path) -> Path:
        out = tmp_path / f"{reseller}-{self.day}.csv"
        done = tillgate(self.gateway, "resellers", "report", "--reseller", reseller,
                        "--date", self.day, "--out", str(out))
        assert done.returncode == 0, done.stderr
        return out

    def reconcile(self, reseller: str, path: Path, *more: str) -> subprocess.CompletedProcess:
        return tillgate(self.gateway, "resellers", "reconcile", "--reseller", reseller,
                        "--date", self.day, str(path), *more)


@pytest.fixture(scope="module")
def posa_day(tmp_path_factory) -> Iterator[PosaDay]:
    gateway = GatewayProcess.prepare(tmp_path_factory.mktemp("posa"), extra=WITH_INCOMM)
    gateway.start(timeout=60)
    try:
        yield _traffic(gateway)
    finally:
        gateway.stop()


def _traffic(gateway: GatewayProcess) -> PosaDay:
    """One day of both networks: a Blackhawk activation; an InComm activation retransmitted
    under a new STAN and field 7 with the same RRN; an InComm activation reversed, the
    reversal repeated (0401); an InComm request with Blackhawk's UPC."""
    day = dt.datetime.now(dt.UTC).date()
    bhn_card, incomm_card, reversed_card, wrong_card = issue_cards(gateway, 4)
    posa = PosaDay(gateway, day.isoformat(), {"bhn": bhn_card, "incomm": incomm_card,
                                              "reversed": reversed_card, "wrong": wrong_card})
    sent = posa.sent
    sent["bhn"] = request_fields(Op.ACTIVATE, card=bhn_card, amount=2500, stan="000001",
                                 rrn="000000000501", upc=BHN_25, serial="BHNSN0001", **BHN)
    sent["incomm"] = request_fields(Op.ACTIVATE, card=incomm_card, amount=2000, stan="000001",
                                    rrn="000000000601", upc=INCOMM_20, serial="INCSN0001",
                                    **INCOMM)
    sent["incomm_again"] = {**sent["incomm"], "11": "000002",
                            "7": "1231235959" if sent["incomm"]["7"] != "1231235959"
                            else "0101000000"}
    sent["variable"] = request_fields(Op.ACTIVATE, card=reversed_card, amount=7500,
                                      stan="000003", rrn="000000000602", upc=INCOMM_VARIABLE,
                                      **INCOMM)
    sent["reversal"] = reversal_fields(sent["variable"], stan="000004")
    sent["reversal_again"] = {**sent["reversal"], "t": "0401"}
    sent["bhn_upc_at_incomm"] = request_fields(Op.ACTIVATE, card=wrong_card, amount=2500,
                                               stan="000005", rrn="000000000603", upc=BHN_25,
                                               **INCOMM)
    with IsoClient("127.0.0.1", gateway.ports["iso"]) as bhn_terminal:
        posa.answers["bhn"] = bhn_terminal.exchange(sent["bhn"])
    with IsoClient("127.0.0.1", gateway.ports["iso"]) as incomm_terminal:
        for name in ("incomm", "incomm_again", "variable", "reversal", "reversal_again",
                     "bhn_upc_at_incomm"):
            posa.answers[name] = incomm_terminal.exchange(sent[name])
    if dt.datetime.now(dt.UTC).date() != day:
        pytest.skip("the UTC day changed during the traffic: its settlement spans two days")
    return posa


def test_incomm_activation_retransmission_and_reversal(posa_day):
    answers = posa_day.answers
    assert {name: a["39"] for name, a in answers.items()} == {
        "bhn": "00", "incomm": "00", "incomm_again": "00", "variable": "00", "reversal": "00",
        "reversal_again": "00", "bhn_upc_at_incomm": "12"}
    # the retransmission is the original's answer, loaded once
    assert answers["incomm_again"]["38"] == answers["incomm"]["38"]
    assert answers["incomm_again"]["11"] == "000002"  # but answered under its own STAN
    cards = posa_day.cards
    assert {name: balance(posa_day.gateway, card) for name, card in cards.items()} == {
        "bhn": 2500, "incomm": 2000, "reversed": 0, "wrong": 0}


def expected_row(posa: PosaDay, name: str, reseller: str, kind: str, card: str, amount: int,
                 upc: str = "", serial: str = "") -> dict[str, str]:
    sent, answer = posa.sent[name], posa.answers[name]
    return {"reseller": reseller, "merchant": sent["42"], "terminal": sent["41"], "type": kind,
            "rrn": sent["37"], "upc": upc, "serial": serial, "card": mask_card(card),
            "amount": str(amount), "currency": "840", "response": "00",
            "auth": answer.get("38", ""), "request_key": key_of(sent)}


def report_rows(path: Path, day: str) -> list[dict[str, str]]:
    """The CSV's rows with their `time` checked (a second of the day, UTC) and left out."""
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(REPORT_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        assert re.fullmatch(rf"{day}T\d\d:\d\d:\d\dZ", row.pop("time")), row
    return rows


def test_settlement_report_of_each_network(posa_day, tmp_path):
    cards = posa_day.cards
    incomm = report_rows(posa_day.report("incomm", tmp_path), posa_day.day)
    # one line per settled request: the retransmission and the repeated reversal settle once,
    # the refused request not at all; in time order (the reversal after its activation)
    assert incomm == [
        expected_row(posa_day, "incomm", "incomm", "activation", cards["incomm"], 2000,
                     INCOMM_20, "INCSN0001"),
        expected_row(posa_day, "variable", "incomm", "activation", cards["reversed"], 7500,
                     INCOMM_VARIABLE),
        expected_row(posa_day, "reversal", "incomm", "reversal", cards["reversed"], 7500),
    ]
    blackhawk = report_rows(posa_day.report("blackhawk", tmp_path), posa_day.day)
    assert blackhawk == [expected_row(posa_day, "bhn", "blackhawk", "activation", cards["bhn"],
                                      2500, BHN_25, "BHNSN0001")]
    # no whole card number anywhere in either file
    text = (tmp_path / f"incomm-{posa_day.day}.csv").read_text()
    text += (tmp_path / f"blackhawk-{posa_day.day}.csv").read_text()
    assert not any(card in text for card in cards.values())


def edited(report: Path, tmp_path: Path, edit) -> Path:
    """A copy of our report as the reseller's file, its rows (dicts) changed by `edit`."""
    with report.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = tmp_path / "theirs.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(edit(rows))
    return out


def test_reconcile_agrees_with_our_own_report(posa_day, tmp_path):
    for reseller, count in (("incomm", 3), ("blackhawk", 1)):
        done = posa_day.reconcile(reseller, posa_day.report(reseller, tmp_path))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{reseller} {posa_day.day}: ours {count}, theirs {count}: " \
                              "all agree\n"


def with_differences(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Their file lacks our first activation, settles the reversed activation at 70.00 (its
    reversal still at 75.00), and has an activation we never answered."""
    _, variable, reversal = rows
    unknown = {**variable, "rrn": "000000000699", "amount": "2000", "request_key": "X"}
    return [{**variable, "amount": "7000"}, reversal, unknown]


def test_reconcile_lists_what_differs(posa_day, tmp_path):
    theirs = edited(posa_day.report("incomm", tmp_path), tmp_path, with_differences)
    done = posa_day.reconcile("incomm", theirs)
    assert done.returncode == 1, done.stderr
    card, reversed_card = (mask_card(posa_day.cards[n]) for n in ("incomm", "reversed"))
    assert done.stdout.splitlines() == [
        f"incomm {posa_day.day}: ours 3, theirs 3: 1 agree, 3 differ",
        "difference         merchant         type        rrn           ours  theirs  line  card",
        f"missing in theirs  INCOMMRESELL001  activation  000000000601  2000       -     -  {card}",
        f"amount differs     INCOMMRESELL001  activation  000000000602  7500    7000     2  "
        f"{reversed_card}",
        f"missing in ours    INCOMMRESELL001  activation  000000000699     -    2000     4  "
        f"{reversed_card}",
    ]
    as_json = posa_day.reconcile("incomm", theirs, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert {k: report[k] for k in ("reseller", "date", "ours", "theirs", "agree")} == {
        "reseller": "incomm", "date": posa_day.day, "ours": 3, "theirs": 3, "agree": 1}
    assert [(d["difference"], d["rrn"], d["ours"], d["theirs"], d["line"])
            for d in report["differences"]] == [
        ("missing_in_theirs", "000000000601", 2000, None, None),
        ("amount", "000000000602", 7500, 7000, 2),
        ("missing_in_ours", "000000000699", None, 2000, 4)]
    # the other network's file is not this one's: its rows are refused, not compared
    wrong = posa_day.reconcile("blackhawk", theirs)
    assert wrong.returncode == 2
    assert "line 2: reseller 'incomm', not 'blackhawk'" in wrong.stderr


BAD_FILES = {
    "amount in major units": ("{header}\n{row}\n{row_75}\n", "line 3: amount '75.00' is not a "
                              "whole number of minor units"),
    "unknown type": ("{header}\n{row_refund}\n", "line 2: type 'refund' is not activation, "
                     "deactivation, reversal"),
    "a field too many": ("{header}\n\n{row},extra\n", "line 3: 15 fields, the header has 14"),
    "not our columns": ("date,upc,value\n2026-12-01,1,2\n", "line 1: no column merchant, type, "
                        "rrn, amount in the header"),
    "empty": ("\n", "line 1: empty file, expected the header row"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_reconcile_refuses_a_bad_file(posa_day, tmp_path, case):
    ours = posa_day.report("incomm", tmp_path).read_text().splitlines()
    header, row = ours[0], ours[2]
    template, message = BAD_FILES[case]
    path = tmp_path / "theirs.csv"
    path.write_text(template.format(header=header, row=row,
                                    row_75=row.replace(",7500,", ",75.00,"),
                                    row_refund=row.replace(",activation,", ",refund,")))
    done = posa_day.reconcile("incomm", path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"tillgate: {path}, {message}"), done.stderr


def test_reconcile_bad_arguments(posa_day, tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"merchant,type,rrn,amount\n\xff\xfe\n")
    for args, message in (
        (("--reseller", "incomm", "--date", posa_day.day, str(tmp_path / "none.csv")),
         "cannot read"),
        (("--reseller", "incomm", "--date", posa_day.day, str(binary)), "not UTF-8 text"),
        (("--reseller", "nope", "--date", posa_day.day, str(binary)), "unknown reseller 'nope'"),
        (("--reseller", "incomm", "--date", "05/12/2026", str(binary)), "expected YYYY-MM-DD"),
    ):
        done = tillgate(posa_day.gateway, "resellers", "reconcile", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
