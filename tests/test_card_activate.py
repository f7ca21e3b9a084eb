"""`tillgate cards activate` (a subprocess) and `POST /v1/cards/activate` (real HTTP), over a real
redis-server: cards issued earlier activated from a file or a range, with one amount or one per
card; a bad line refuses the whole batch; a retried batch replays, loading nothing twice; the
batch id in each journal entry's request key; the alert of a large batch."""

from __future__ import annotations

import asyncio
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import pytest_twisted
import redis
from test_admin_cards import call
from test_admin_issue import CRM, SHOP, journal_length, shop_gateway, tokens  # noqa: F401
from test_ledger_cli import ROOT, tillgate, write_config

from gateway.config.model import load_config
from gateway.issuance import activatebatch
from gateway.issuance.activatebatch import ALERT, request_key
from gateway.issuance.activatefile import from_range, read_file
from gateway.issuance.importfile import ImportFileError
from gateway.ledger import cards
from gateway.ledger.journal import Entry, latest
from gateway.ledger.processor import Processor
from gateway.ledger.storeconnect import store_session
from gateway.reactor import deferred_from_coro
from gateway.security.alerts.queue import STREAM
from gateway.security.alerts.record import Alert
from protocols.carddata import generate_card_number, luhn_check_digit

CONFIG = load_config(ROOT / "config" / "tillgate.toml")


@pytest.fixture
def config_file(tmp_path, redis_url):
    return write_config(tmp_path, redis_url)


def numbers(program: str, count: int) -> list[str]:
    p = CONFIG.programs[program]
    return [generate_card_number(p.prefix, p.card_length_max, p.luhn) for _ in range(count)]


def consecutive(count: int) -> list[str]:
    """`count` gift numbers in a row (each body plus its Luhn check digit)."""
    base = int("603953" + "".join(secrets.choice("0123456789") for _ in range(10)) + "00")
    bodies = [str(base + i) for i in range(count)]
    return [body + str(luhn_check_digit(body)) for body in bodies]


def issue(config_file: str, program: str, numbers: list[str]) -> None:
    async def run():
        config = load_config(config_file)
        async with store_session(config) as store:
            for number in numbers:
                assert await cards.issue_card(store, config.programs[program], number)
    in_thread(run)


def state(redis_url: str, card: str) -> tuple[str, int]:
    status, bal = redis.Redis.from_url(redis_url).hmget(cards.state_key(cards.card_id(card)),
                                                        "status", "bal")
    return status.decode(), int(bal or 0)


def journal(redis_url: str, card: str) -> list[Entry]:
    entries = redis.Redis.from_url(redis_url).xrange(cards.journal_key(cards.card_id(card)))
    return [Entry.decode(entry_id, fields[b"e"]) for entry_id, fields in entries]


def alerts(redis_url: str) -> list[Alert]:
    entries = redis.Redis.from_url(redis_url).xrange(STREAM)
    return [Alert.from_json(fields[b"a"]) for _id, fields in entries]


# -- the file and the range, before the store ---------------------------------------------------

def test_file_problems_by_line_and_amounts():
    gift = numbers("gift", 3)
    bad = gift[2][:-1] + str((int(gift[2][-1]) + 1) % 10)
    text = (f"card,amount\n{gift[0]},12.50\n{gift[1]},\n{gift[0]},1\n{bad},1\n"
            f"{gift[2]},2000.00\n{gift[2]},x\n")
    with pytest.raises(ImportFileError) as caught:
        read_file(text.encode(), CONFIG, "gift")
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in (3, 4, 5, 6, 7)]
    assert "no amount" in problems[0] and "repeats line 2" in problems[1]
    assert "does not fit" in problems[2] and "maximum balance" in problems[3]
    assert not any(n in "\n".join(problems) for n in gift + [bad])
    batch = read_file(f"Card\n{gift[0]}\n{gift[1]}\n".encode(), CONFIG, "gift", "25")
    assert [(r.line, r.amount) for r in batch.rows] == [(2, 2500), (3, 2500)]
    again = read_file(f"card\n{gift[0]}\n{gift[1]}\n".encode(), CONFIG, "gift", "25.00")
    assert again.id == batch.id  # the same cards and amounts: the same batch
    assert read_file(f"card\n{gift[0]}\n".encode(), CONFIG, "gift", "26").id != batch.id


def test_a_range_holds_every_number_of_the_program_between_both_ends():
    run = consecutive(12)
    batch = from_range(CONFIG, "gift", run[1], run[10], "5.00")
    assert [r.card for r in batch.rows] == run[1:11]
    assert [r.line for r in batch.rows] == list(range(1, 11))
    with pytest.raises(ImportFileError) as caught:  # said once, not for every card
        from_range(CONFIG, "gift", run[0], run[10], "2000.00")
    assert caught.value.problems == ["amount: amount over the program's maximum balance"]
    with pytest.raises(ImportFileError, match="must not come after"):
        from_range(CONFIG, "gift", run[5], run[2], "5")
    with pytest.raises(ImportFileError, match="more than 3 cards"):
        from_range(replace(CONFIG, imports=replace(CONFIG.imports, max_rows=3)), "gift",
                   run[0], run[5], "5")


# -- the command ---------------------------------------------------------------------------------

def test_file_with_per_card_amounts_activates_once_and_a_retry_replays(config_file, tmp_path,
                                                                       redis_url):
    gift = numbers("gift", 3)
    issue(config_file, "gift", gift)
    path = tmp_path / "charity.csv"
    path.write_text(f"card,amount\n{gift[0]},10.00\n{gift[1]},\n{gift[2]},7.50\n")

    done = tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--amount", "25")
    assert done.returncode == 0, done.stderr
    assert [state(redis_url, c) for c in gift] == [("active", 1000), ("active", 2500),
                                                  ("active", 750)]
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["line", "2"] and "activated" in lines[0]
    assert "3 activated, 0 already" in lines[-1]
    assert not any(c in done.stdout + done.stderr for c in gift)

    again = tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                     "--amount", "25", "--json")
    assert again.returncode == 0, again.stderr
    *per_card, summary = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["result"] for r in per_card] == ["replayed"] * 3
    assert (summary["activated"], summary["replayed"]) == (0, 3)
    for card in gift:  # loaded once: one journal entry, the batch in its request key
        entries = journal(redis_url, card)
        assert len(entries) == 1 and entries[0].terminal == cards.OPERATOR
        assert entries[0].key.startswith("ACT:" + summary["batch"][:24] + ":")
    assert [state(redis_url, c)[1] for c in gift] == [1000, 2500, 750]


def test_a_range_with_one_amount_and_progress_for_a_large_batch(config_file, redis_url):
    run = consecutive(1000)
    issue(config_file, "gift", run)
    done = tillgate(config_file, "cards", "activate", "--program", "gift", "--first", run[0],
                    "--last", run[-1], "--amount", "5")
    assert done.returncode == 0, done.stderr
    assert "1000/1000 cards" in done.stderr and "200/1000 cards" in done.stderr
    assert {state(redis_url, c) for c in run} == {("active", 500)}
    assert len(done.stdout.splitlines()) == 1001


def test_one_bad_line_refuses_the_whole_batch(config_file, tmp_path, redis_url):
    gift = numbers("gift", 5)
    issue(config_file, "gift", gift[:3])
    issue(config_file, "secure", gift[4:])  # a gift number held by another program's card
    first = tmp_path / "first.csv"
    first.write_text(f"card\n{gift[0]}\n")
    assert tillgate(config_file, "cards", "activate", str(first), "--program", "gift",
                    "--amount", "1").returncode == 0
    path = tmp_path / "mixed.csv"
    path.write_text(f"card,amount\n{gift[1]},5\n{gift[0]},5\n{gift[3]},5\n{gift[2]},5\n"
                    f"{gift[4]},5\n")
    done = tillgate(config_file, "cards", "activate", str(path), "--program", "gift")
    assert done.returncode == 2
    assert "line 3: card" in done.stderr and "already active" in done.stderr
    assert "line 4: card" in done.stderr and "not issued (unknown card)" in done.stderr
    assert "line 6: card" in done.stderr and "belongs to program 'secure'" in done.stderr
    assert "nothing activated (3 problem(s))" in done.stderr
    assert not any(c in done.stderr for c in gift)
    assert state(redis_url, gift[1]) == ("issued", 0) and state(redis_url, gift[2]) == ("issued",
                                                                                         0)
    assert state(redis_url, gift[0]) == ("active", 100)
    path.write_text(f"card,amount\n{gift[1]},2000.00\n")  # refused before the store
    done = tillgate(config_file, "cards", "activate", str(path), "--program", "gift")
    assert done.returncode == 2 and "line 2: amount over" in done.stderr
    assert tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--first", gift[1], "--last", gift[1]).returncode == 2


def test_a_large_batch_raises_one_alert(tmp_path, redis_url):
    config_file = write_config(tmp_path, redis_url, "\n[imports]\nlarge_activation_cards = 2\n")
    gift = numbers("gift", 3)
    issue(config_file, "gift", gift)
    path = tmp_path / "big.csv"
    path.write_text("card\n" + "\n".join(gift) + "\n")
    before = [a for a in alerts(redis_url) if a.rule == ALERT]
    done = tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--amount", "1")
    assert done.returncode == 0, done.stderr
    raised = [a for a in alerts(redis_url) if a.rule == ALERT][len(before):]
    assert len(raised) == 1 and raised[0].count == 3 and raised[0].amount == 300
    assert raised[0].value == "gift" and raised[0].terminal == cards.OPERATOR
    assert not any(c in raised[0].to_json() for c in gift)
    assert tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--amount", "1").returncode == 0
    assert len([a for a in alerts(redis_url) if a.rule == ALERT]) == len(before) + 1
    path.write_text(f"card\n{gift[0]}\n{gift[1]}\n")  # at the threshold: no alert
    small = numbers("gift", 2)
    issue(config_file, "gift", small)
    path.write_text("card\n" + "\n".join(small) + "\n")
    assert tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--amount", "1").returncode == 0
    assert len([a for a in alerts(redis_url) if a.rule == ALERT]) == len(before) + 1


# -- the admin API -------------------------------------------------------------------------------

async def activate(port: int, body: object, token: str | None = SHOP):
    return await call(port, "/v1/cards/activate", body, token)


@pytest_twisted.ensureDeferred
async def test_activate_over_http_with_scopes_results_and_replay(tillgate_inprocess_factory,
                                                               tokens):  # noqa: F811
    gw, port, store = await shop_gateway(tillgate_inprocess_factory)
    program = gw.gateway.config.programs["gift"]
    gift = numbers("gift", 3)
    for number in gift:
        assert await deferred_from_coro(cards.issue_card(store, program, number))
    body = {"program": "gift", "cards": [gift[0], {"card": gift[1], "amount": 1500}],
            "amount": 2500}
    assert (await activate(port, body, token=None))[0] == 401
    assert (await activate(port, body, token=CRM))[0] == 403
    assert (await activate(port, {**body, "amount": 25.0}))[0] == 400

    status, bad = await activate(port, {**body, "cards": [gift[0], "6039530000000000001"]})
    assert status == 422 and bad["problems"][0].startswith("line 2: card")
    status, bad = await activate(port, {**body, "cards": [gift[0], gift[2], gift[2]]})
    assert status == 422 and "repeats line 2" in bad["problems"][0]

    status, first = await activate(port, body)
    assert status == 200, first
    assert [(r["line"], r["result"], r["amount"], r["balance"]) for r in first["results"]] == [
        (1, "activated", 2500, 2500), (2, "activated", 1500, 1500)]
    assert gift[0] not in json.dumps(first)
    status, again = await activate(port, body)
    assert status == 200 and [r["result"] for r in again["results"]] == ["replayed"] * 2
    for number, balance in ((gift[0], 2500), (gift[1], 1500)):
        found = await deferred_from_coro(latest(store, cards.journal_key(cards.card_id(number)),
                                                10))
        assert len(found) == 1 and found[0].terminal == "token:shop"
        assert found[0].key.startswith("ACT:" + first["batch"][:24] + ":")
        assert (await deferred_from_coro(cards.show_card(store, number))).balance == balance

    status, refused = await activate(port, {"program": "gift", "first": gift[2],
                                            "last": gift[2], "amount": 100})
    assert status == 200 and refused["activated"] == 1
    status, refused = await activate(port, {"program": "gift", "cards": [gift[0]],
                                            "amount": 100})
    assert status == 422 and "already active" in refused["problems"][0]


def test_request_key_names_the_batch_and_the_line():
    gift = numbers("gift", 1)
    batch = read_file(f"card\n{gift[0]}\n".encode(), CONFIG, "gift", "1")
    assert request_key(batch, batch.rows[0]) == f"ACT:{batch.id[:24]}:2"


def in_thread(work) -> object:
    """Run a coroutine function on its own loop (the suite's reactor runs one in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


def test_a_batch_stopped_part_way_is_finished_by_sending_it_again(config_file, tmp_path,
                                                                  redis_url):
    gift = numbers("gift", 4)
    issue(config_file, "gift", gift)
    path = tmp_path / "stopped.csv"
    path.write_text("card\n" + "\n".join(gift) + "\n")
    config = load_config(config_file)
    batch = read_file(path.read_bytes(), config, "gift", "3")

    async def first_two():  # what a run that died after its second card had done
        async with store_session(config) as store:
            processor = Processor(config, store)
            for row in batch.rows[:2]:
                result = await processor.operator_apply(cards.operator_activation(
                    row.card, row.amount, 0, cards.OPERATOR, request_key(batch, row), "cli"))
                assert result.approved
    in_thread(first_two)

    done = tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                    "--amount", "3", "--json")
    assert done.returncode == 0, done.stderr
    *per_card, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["result"] for r in per_card] == ["replayed", "replayed", "activated", "activated"]
    assert summary["batch"] == batch.id
    assert [len(journal(redis_url, c)) for c in gift] == [1, 1, 1, 1]
    assert {state(redis_url, c) for c in gift} == {("active", 300)}


def test_a_card_changed_after_the_check_is_refused_on_its_own(config_file, redis_url):
    gift = numbers("gift", 3)
    issue(config_file, "gift", gift)
    config = load_config(config_file)
    batch = read_file(("card\n" + "\n".join(gift) + "\n").encode(), config, "gift", "4")

    async def run():
        async with store_session(config) as store:
            checked = await activatebatch.check(store, batch)
            assert not checked.problems
            await cards.set_card_status(store, gift[1], "suspended")  # between check and run
            return await activatebatch.activate(Processor(config, store), batch, checked,
                                                cards.OPERATOR, "cli")
    results = in_thread(run)
    assert [(r.line, r.outcome) for r in results] == [(2, "activated"), (3, "refused"),
                                                      (4, "activated")]
    assert results[1].code != "00" and gift[1] not in repr(results)
    assert [state(redis_url, c) for c in gift] == [("active", 400), ("suspended", 0),
                                                  ("active", 400)]


def test_loyalty_cards_are_activated_without_points(config_file, tmp_path, redis_url):
    loyalty = numbers("loyalty", 2)
    issue(config_file, "loyalty", loyalty)
    path = tmp_path / "loyalty.csv"
    path.write_text("card\n" + "\n".join(loyalty) + "\n")
    refused = tillgate(config_file, "cards", "activate", str(path), "--program", "loyalty",
                       "--amount", "5")
    assert refused.returncode == 2 and "without points" in refused.stderr
    done = tillgate(config_file, "cards", "activate", str(path), "--program", "loyalty")
    assert done.returncode == 0, done.stderr
    assert [state(redis_url, c) for c in loyalty] == [("active", 0)] * 2
    wrong = tillgate(config_file, "cards", "activate", str(path), "--program", "gift",
                     "--amount", "5")
    assert wrong.returncode == 2 and "does not fit program 'gift'" in wrong.stderr
