"""Issue 19 over the wire: a `tillgate serve` subprocess on a real Redis, tills on real sockets
(ISO 8583 and TGL/1), and the `tillgate rewards` and `cards history` commands as subprocesses.
A reward made with the CLI is claimed by a till, the staff member's id lands in the journal from
both protocols, a void at the till gives points and stock back, and the operator's void-claim
does the same for a claim listed by `rewards claims`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from linetill import tgl_request
from wireclients import LineClient, iso_batch

from gateway.testing import GatewayProcess
from protocols import field63, isocodec
from protocols.isobuild import request_fields
from protocols.isospec import spec_for_bitmap
from protocols.model import Op

SPEC = spec_for_bitmap("ascii")
TERM, MERCH = "TILL0001", "STORE0000000001"


@pytest.fixture
def gateway(tmp_path, redis_url):
    gw = GatewayProcess.prepare(tmp_path, redis_url=redis_url).start()
    yield gw
    gw.stop()


def cli(gw: GatewayProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(gw.command(*args), capture_output=True, text=True, timeout=60,
                          cwd=gw.workdir)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def iso(gw: GatewayProcess, op: Op, stan: str, **kw) -> tuple[dict[str, str], dict[str, str]]:
    fields = request_fields(op, terminal=TERM, merchant=MERCH, stan=stan, **kw)
    return fields, iso_batch(gw.ports["iso"], [isocodec.encode(fields, SPEC)])[0]


def tgl(gw: GatewayProcess, **fields: str) -> dict[str, str]:
    with LineClient(gw.ports["line"]) as till:
        return till.batch([tgl_request(term=TERM, merch=MERCH, **fields)])[0]


def history(gw: GatewayProcess, card: str) -> list[dict]:
    return [json.loads(line) for line in cli(gw, "cards", "history", card, "--json"
                                             ).stdout.splitlines()]


def test_rewards_claimed_over_iso_and_tgl_with_staff_in_the_journal(gateway):
    gw = gateway
    added = json.loads(cli(gw, "rewards", "add", "--program", "loyalty", "MUG", "--name",
                           "Mug", "--points", "30", "--stock", "2").stdout)
    assert (added["points"], added["stock"], added["enabled"]) == (30, 2, True)
    bad = cli(gw, "rewards", "add", "--program", "loyalty", "BAD", "--points", "-1", ok=False)
    assert (bad.returncode, bad.stderr.strip()) == (2, "tillgate: points: at least 1")
    issued = cli(gw, "cards", "issue", "--program", "loyalty", "--count", "1", "--activate", "0")
    card = issued.stdout.splitlines()[1].split(",")[0]

    earned = tgl(gw, id="1", op="earn", card=card, amt="10000", opid="ANNA")
    assert (earned["rc"], earned["pts"]) == ("00", "100")
    claim, answer = iso(gw, Op.REDEEM_POINTS, "000001", card=card, amount=0, reward="MUG",
                        operator="BERT")
    assert (answer["39"], field63_points(answer)) == ("00", "70")
    by_tgl = tgl(gw, id="2", op="predeem", card=card, reward="MUG", opid="ANNA")
    assert (by_tgl["rc"], by_tgl["pts"]) == ("00", "40")
    sold_out = tgl(gw, id="3", op="predeem", card=card, reward="MUG", opid="ANNA")
    assert (sold_out["rc"], sold_out.get("msg")) == ("05", "out of stock")

    # the ISO claim voided at the till: points and one item come back
    _, voided = iso(gw, Op.VOID, "000002", card=card, operator="CARL", original=claim)
    assert (voided["39"], field63_points(voided)) == ("00", "70")
    listed = json.loads(cli(gw, "rewards", "list", "--program", "loyalty").stdout.splitlines()[1])
    assert (listed["id"], listed["stock"], listed["claimed"]) == ("MUG", 1, 1)

    entries = history(gw, card)
    assert [(e["op"], e["dp"], e["operator"], e["reward"]) for e in entries] == [
        ("activate", 0, "", ""), ("earn", 100, "ANNA", ""),
        ("redeem_points", -30, "BERT", "MUG"), ("redeem_points", -30, "ANNA", "MUG"),
        ("void", 30, "CARL", "MUG")]

    # the operator lists the period's claims and voids the TGL one
    today = dt.datetime.now(dt.UTC).date().isoformat()
    claims = [json.loads(line) for line in cli(
        gw, "rewards", "claims", "--program", "loyalty", "--from", today, "--to", today
    ).stdout.splitlines()]
    assert [(c["op"], c["operator"], c["voided"]) for c in claims] == [
        ("claim", "BERT", True), ("claim", "ANNA", False), ("void", "CARL", False)]
    done = json.loads(cli(gw, "rewards", "void-claim", "--program", "loyalty",
                          claims[1]["key"]).stdout)
    assert (done["rc"], done["points"]) == ("00", 100)
    again = cli(gw, "rewards", "void-claim", "--program", "loyalty", claims[1]["key"], ok=False)
    assert again.returncode == 1 and json.loads(again.stdout)["rc"] == "12"
    listed = json.loads(cli(gw, "rewards", "list", "--program", "loyalty").stdout.splitlines()[1])
    assert (listed["stock"], listed["claimed"]) == (2, 0)
    assert history(gw, card)[-1]["operator"].startswith("cli:")

    # an operator id longer than the journal keeps (20, as TGL's opid) is a format error
    _, long_opid = iso(gw, Op.EARN, "000003", card=card, amount=100, operator="X" * 21)
    assert long_opid["39"] == "30"

    cli(gw, "rewards", "disable", "--program", "loyalty", "MUG")
    refused = tgl(gw, id="4", op="predeem", card=card, reward="MUG")
    assert (refused["rc"], refused.get("msg")) == ("12", "reward disabled")
    assert cli(gw, "audit").returncode == 0


def field63_points(answer: dict[str, str]) -> str:
    return field63.parse(answer["63"])[0]["PT"]
