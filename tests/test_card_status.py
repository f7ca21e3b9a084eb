"""Operator status changes (`cards suspend|reinstate|lost|close`): what tills are answered after
each, which changes are refused, the journal entry each leaves, and the commands themselves."""

from __future__ import annotations

import json

import pytest_twisted
from test_ledger_cli import config_file, tillgate  # noqa: F401  (fixture)
from test_ledger_support import ledger  # noqa: F401  (fixture)

from gateway.ledger import cards
from gateway.ledger.audit import audit
from gateway.ledger.journal import entries
from protocols.model import RC, Op


async def journal_of(store, card: str) -> list:
    return [e async for e in entries(store, cards.journal_key(cards.card_id(card)))]


@pytest_twisted.ensureDeferred
async def test_suspend_reinstate_lost_and_close(ledger):  # noqa: F811
    card = await ledger.issue("gift", activate=1000)

    async def status_change(to: str) -> dict:
        return await ledger.call(cards.set_card_status(ledger.store, card, to))

    assert (await status_change("suspended"))["msg"] == "active -> suspended"
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.SUSPENDED
    assert (await ledger.send(Op.BALANCE, card)).code == RC.SUSPENDED
    assert (await status_change("suspended"))["rc"] == "12"  # already
    assert (await status_change("reinstate"))["msg"] == "suspended -> active"
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.APPROVED

    assert (await status_change("lost"))["msg"] == "active -> lost"
    assert (await ledger.send(Op.REDEEM, card, 100)).code == RC.LOST_CARD
    refused = await status_change("reinstate")
    assert refused["rc"] == "12" and refused["msg"] == "card is lost"
    assert (await status_change("closed"))["msg"] == "lost -> closed"
    assert (await ledger.send(Op.BALANCE, card)).code == "78"
    assert (await status_change("suspended"))["rc"] == "12"

    view = await ledger.show(card)
    assert (view.status, view.balance) == ("closed", 900)  # the balance stays, for the audit
    journal = await ledger.call(journal_of(ledger.store, card))
    assert [e.op for e in journal] == ["activate", "status:suspended", "status:reinstate",
                                       "redeem", "status:lost", "status:closed"]
    assert all(e.dv == 0 and e.bal == 900 for e in journal[-2:])
    assert (await ledger.call(audit(ledger.store))).ok


@pytest_twisted.ensureDeferred
async def test_an_unsold_card_suspended_goes_back_to_issued(ledger):  # noqa: F811
    card = await ledger.issue("gift")
    assert (await ledger.call(cards.set_card_status(ledger.store, card, "suspended")))["rc"] == "00"
    assert (await ledger.send(Op.ACTIVATE, card, 500)).code == RC.SUSPENDED
    back = await ledger.call(cards.set_card_status(ledger.store, card, "reinstate"))
    assert back["msg"] == "suspended -> issued"
    assert (await ledger.send(Op.ACTIVATE, card, 500)).code == RC.APPROVED
    unknown = await ledger.call(cards.set_card_status(ledger.store, "6039530000000000019",
                                                      "suspended"))
    assert unknown["rc"] == "14"


def test_the_commands(config_file):  # noqa: F811
    issued = tillgate(config_file, "cards", "issue", "--program", "gift", "--count", "1",
                      "--activate", "5")
    card = issued.stdout.splitlines()[1].split(",")[0]
    done = tillgate(config_file, "cards", "suspend", card)
    assert done.returncode == 0 and "active -> suspended" in done.stdout
    assert card not in done.stdout  # masked
    again = tillgate(config_file, "cards", "suspend", card)
    assert again.returncode == 2 and "not changed (card is suspended)" in again.stderr
    final = tillgate(config_file, "cards", "close", card)
    assert final.returncode == 2 and "--yes" in final.stderr
    closed = tillgate(config_file, "cards", "close", card, "--yes")
    assert closed.returncode == 0 and "suspended -> closed" in closed.stdout
    assert tillgate(config_file, "cards", "reinstate", card).returncode == 2

    history = tillgate(config_file, "cards", "history", card)
    assert history.returncode == 0 and card not in history.stdout
    lines = history.stdout.splitlines()
    assert lines[0].endswith(": 3 entries")
    assert [line.split()[1] for line in lines[2:]] == ["activate", "status:suspended",
                                                       "status:closed"]
    assert "+500" in lines[2] and "OPERATOR" in lines[3]
    as_json = tillgate(config_file, "cards", "history", card, "--last", "1", "--json")
    entry = json.loads(as_json.stdout)
    assert entry["op"] == "status:closed" and entry["bal"] == 500 and entry["time"].endswith("Z")
