"""Reward claims on a Redis Cluster over the wire: a `tillgate serve` subprocess on the
session's local cluster, tills on real sockets (ISO 8583 and TGL/1) and the `tillgate rewards`
commands as subprocesses (gateway/ledger/rewardsplit.py; tests/test_cluster_rewards.py has the
steps, retransmissions and crashes)."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from test_rewards_wire import cli, field63_points, iso, tgl

from gateway.testing import GatewayProcess
from protocols.model import Op


@pytest.fixture
def cluster_serve(tmp_path, tillgate_cluster_url):
    gw = GatewayProcess.prepare(tmp_path, redis_url=tillgate_cluster_url).start()
    yield gw
    gw.stop()


def test_claims_over_iso_and_tgl_and_the_cli_on_the_cluster(cluster_serve):
    # a claim by each protocol, the last item refused, a void at the till and the operator's
    # void-claim: points and stock right after each
    gw = cluster_serve
    rid = "W" + secrets.token_hex(4).upper()  # the session's cluster is shared: an id of its own
    cli(gw, "rewards", "add", "--program", "loyalty", rid, "--points", "30", "--stock", "2")
    issued = cli(gw, "cards", "issue", "--program", "loyalty", "--count", "1", "--activate", "0")
    card = issued.stdout.splitlines()[1].split(",")[0]
    assert tgl(gw, id="1", op="earn", card=card, amt="10000")["pts"] == "100"
    claim, answer = iso(gw, Op.REDEEM_POINTS, "000001", card=card, amount=0, reward=rid)
    assert (answer["39"], field63_points(answer)) == ("00", "70")
    by_tgl = tgl(gw, id="2", op="predeem", card=card, reward=rid)
    assert (by_tgl["rc"], by_tgl["pts"]) == ("00", "40")
    sold_out = tgl(gw, id="3", op="predeem", card=card, reward=rid)
    assert (sold_out["rc"], sold_out.get("msg")) == ("05", "out of stock")
    _, voided = iso(gw, Op.VOID, "000002", card=card, original=claim)
    assert (voided["39"], field63_points(voided)) == ("00", "70")

    def listed() -> dict:
        lines = cli(gw, "rewards", "list", "--program", "loyalty").stdout.splitlines()[1:]
        return next(r for r in map(json.loads, lines) if r["id"] == rid)

    now = listed()
    assert (now["stock"], now["claimed"]) == (1, 1)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    claims = [c for c in map(json.loads, cli(gw, "rewards", "claims", "--program", "loyalty",
                                             "--from", today, "--to", today
                                             ).stdout.splitlines()) if c["reward"] == rid]
    assert [(c["op"], c["voided"]) for c in claims] == [("claim", True), ("claim", False),
                                                       ("void", False)]
    done = json.loads(cli(gw, "rewards", "void-claim", "--program", "loyalty",
                          claims[1]["key"]).stdout)
    assert (done["rc"], done["points"]) == ("00", 100)
    now = listed()
    assert (now["stock"], now["claimed"]) == (2, 0)
