"""`tillgate customers ...` run as an operator would (subprocesses), on SQLite and PostgreSQL
with a real redis-server: records, types, links, CSV import (all or nothing, problems by line)
and export, the inactive mark on cards in Redis, and its repair by `sync-status`."""

from __future__ import annotations

import csv
import io
import json

import pytest
import redis
from test_ledger_cli import ROOT, tillgate, write_config

from gateway.ledger.cards import CUSTOMER_FIELD, card_id, journal_key, state_key


@pytest.fixture
def config(tmp_path, redis_url, backoffice_url):
    return write_config(tmp_path, redis_url, f'\n[backoffice]\nurl = "{backoffice_url}"\n')


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def ok(config: str, *args: str) -> str:
    done = tillgate(config, "customers", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(config: str, *args: str, status: int = 2) -> str:
    done = tillgate(config, "customers", *args)
    assert done.returncode == status, (done.stdout, done.stderr)
    return done.stderr


def issue(config: str, count: int, amount: str = "5") -> list[str]:
    done = tillgate(config, "cards", "issue", "--program", "gift", "--count", str(count),
                    "--activate", amount)
    assert done.returncode == 0, done.stderr
    return [line.split(",")[0] for line in done.stdout.splitlines()[1:]]


def mark(store, card: str) -> bytes | None:
    return store.hget(state_key(card_id(card)), CUSTOMER_FIELD)


# About 30 CLI processes, one after another: 30 s on a quiet machine, near the suite's 120 s
# default on a machine running other suites beside it.
@pytest.mark.timeout(300)
def test_records_types_links_and_the_inactive_mark(config, store):
    first, second = issue(config, 2)
    assert "customer type gold added" in ok(config, "types", "add", "gold", "--program", "gift",
                                           "--description", "big spenders")
    assert "no program 'nope'" in refused(config, "types", "add", "x", "--program", "nope")
    ok(config, "add", "C-1", "--name", "Ada Lovelace", "--email", "ada@example.org",
       "--type", "gold", "--consent")
    assert "customer 'C-1' exists" in refused(config, "add", "C-1", "--name", "Again")
    assert "is not an e-mail address" in refused(config, "add", "C-2", "--name", "B",
                                                 "--email", "b@")
    assert "no customer type 'tin'" in refused(config, "add", "C-2", "--name", "B",
                                               "--type", "tin")
    ok(config, "add", "C-2", "--name", "Bob")

    linked = ok(config, "link", "C-1", first)
    assert first not in linked and first[-4:] in linked and "linked to C-1" in linked
    assert "held by customer 'C-1'" in refused(config, "link", "C-2", first)
    assert "moved from C-1" in ok(config, "link", "C-2", first, "--move")
    ok(config, "link", "C-2", second)
    assert "not a card number" in refused(config, "link", "C-2", "1234")

    changed = ok(config, "set", "C-2", "--status", "inactive")
    assert "active -> inactive" in changed and "2 marked inactive" in changed
    assert mark(store, first) == mark(store, second) == b"inactive"
    shown = ok(config, "show", "C-2")
    assert first not in shown and "balance 500" in shown and "customer inactive" in shown
    data = json.loads(ok(config, "show", "C-2", "--json"))
    assert [c["customer_inactive"] for c in data["cards"]] == [True, True]

    ok(config, "unlink", "C-2", second)
    assert mark(store, second) is None  # its own card again
    assert "not held by customer 'C-1'" in refused(config, "unlink", "C-1", second)
    ok(config, "set", "C-2", "--status", "active")
    assert mark(store, first) is None

    listing = ok(config, "list", "--status", "active", "--json").splitlines()
    assert [json.loads(line)["code"] for line in listing] == ["C-1", "C-2"]
    assert "C-1" in ok(config, "list", "--type", "gold") and \
        "C-2" not in ok(config, "list", "--type", "gold")
    assert json.loads(ok(config, "types", "list", "--json"))["customers"] == 1
    history = [e.split()[1] for e in tillgate(config, "cards", "history", first).stdout
               .splitlines()[2:]]
    assert history == ["activate", "cust:inactive", "cust:active"]


def test_a_crash_between_sql_and_redis_is_repaired_by_sync_status(config, store):
    kept, stray = issue(config, 2)
    ok(config, "add", "C-9", "--name", "Nine")
    ok(config, "link", "C-9", kept)
    ok(config, "set", "C-9", "--status", "inactive")
    # As a crash would leave them: one card of the inactive customer lost its mark (SQL was
    # committed, Redis not yet written), one card nobody holds kept a mark (unlinked in SQL).
    store.hdel(state_key(card_id(kept)), CUSTOMER_FIELD)
    store.hset(state_key(card_id(stray)), CUSTOMER_FIELD, "inactive")
    report = ok(config, "sync-status")
    assert "2 card(s) checked: 1 marked inactive, 1 cleared" in report
    assert mark(store, kept) == b"inactive" and mark(store, stray) is None
    assert "0 marked inactive, 0 cleared" in ok(config, "sync-status")  # idempotent


def test_import_is_all_or_nothing_and_export_reads_back(config, store, tmp_path):
    one, two, three, held, gone = issue(config, 5)
    store.delete(state_key(card_id(gone)), journal_key(card_id(gone)))  # never in the store
    ok(config, "types", "add", "gold")
    ok(config, "add", "OLD", "--name", "Old Customer")
    ok(config, "link", "OLD", held)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,name,email,type,status,consent,cards\n"
        f"A-1,Ann,ann@example.org,gold,active,yes,{one} {two}\n"
        f"A-2,,bob@,tin,sleeping,maybe,{two} 6039530000000000000\n"
        f"A-1,Ann again,,,,,{held}\n"
        "A-3,Cy,cy@example.org,,,\n")
    problems = refused(config, "import", str(bad), status=1).splitlines()
    text = "\n".join(problems)
    for words in ("line 3: name: required", "line 3: email: 'bob@'", "line 3: status:",
                  "line 3: consent: 'maybe'", f"line 3: cards: 603953*********{two[-4:]} is "
                  "on line 2 too", "line 4: code: 'A-1' is on line 2 too",
                  "line 5: 6 fields, the header has 7",
                  # what only SQL can tell, in the same refusal
                  "line 3: type: no customer type 'tin'",
                  f"line 4: cards: 603953*********{held[-4:]} is held by customer 'OLD'"):
        assert words in text
    assert two not in text and "nothing was imported" in problems[-1]
    assert "line 3: cards: 603953*********0000 is not a card number" in text
    assert len(ok(config, "list", "--json").splitlines()) == 1  # OLD only

    # rows fine on their own, refused by what the store and SQL hold: still nothing written
    late = tmp_path / "late.csv"
    late.write_text("code,name,type,cards\n"
                    f"A-1,Ann,gold,{one}\n"
                    f"A-2,Bob,tin,{held}\n"
                    f"A-3,Cy,,{gone}\n")
    text = refused(config, "import", str(late), status=1)
    assert "line 3: type: no customer type 'tin'" in text
    assert "line 3: cards: 603953*********" + held[-4:] + " is held by customer 'OLD'" in text
    assert f"line 4: cards: 603953*********{gone[-4:]} is not in the store" in text
    assert json.loads(ok(config, "list", "--json").splitlines()[0])["code"] == "OLD"
    assert len(ok(config, "list", "--json").splitlines()) == 1

    good = tmp_path / "good.csv"
    good.write_text("code,name,email,type,status,consent,notes,cards\n"
                    f"A-1,Ann,ann@example.org,gold,active,yes,,{one} {two}\n"
                    f"A-2,Bob,,,inactive,no,\"met at the fair, 2026\",{three} {held}\n"
                    "OLD,Old Customer,old@example.org,,,,,\n")
    assert "held by customer 'OLD'" in refused(config, "import", str(good), status=1)
    done = ok(config, "import", str(good), "--move")
    assert "3 customer(s): 2 added, 1 updated; 4 card(s) linked (1 moved); " \
           "2 marked inactive" in done
    assert mark(store, three) == mark(store, held) == b"inactive" and mark(store, one) is None
    assert store.hget(state_key(card_id(one)), "bal") == b"500"  # balances untouched
    assert store.xlen(journal_key(card_id(one))) == 1

    out = tmp_path / "out.csv"
    ok(config, "export", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["code"] for r in rows] == ["A-1", "A-2", "OLD"]
    assert rows[1]["notes"] == "met at the fair, 2026" and rows[1]["status"] == "inactive"
    assert sorted(rows[1]["cards"].split()) == sorted(
        "603953*********" + c[-4:] for c in (three, held))
    assert rows[2]["email"] == "old@example.org" and rows[2]["cards"] == ""
    assert all(c not in out.read_text() for c in (one, two, three, held))

    # an export, edited, imports back: masked cards name what is held already
    edited = out.read_text().replace("inactive", "active")
    (tmp_path / "edited.csv").write_text(edited)
    done = ok(config, "import", str(tmp_path / "edited.csv"))
    assert "0 added, 3 updated; 0 card(s) linked" in done and "2 cleared" in done
    assert mark(store, three) is None and mark(store, held) is None
    alien = edited.replace("OLD,Old Customer,old@example.org,,,active,no,,",
                           "OLD,Old Customer,old@example.org,,,active,no,,603953*********9999")
    (tmp_path / "alien.csv").write_text(alien)
    assert "is masked and 'OLD' does not hold it" in refused(
        config, "import", str(tmp_path / "alien.csv"), status=1)
    (tmp_path / "nocode.csv").write_text("name,cards\nAnn,\n")
    assert "line 1: no code column" in refused(config, "import", str(tmp_path / "nocode.csv"),
                                                status=1)


def test_the_commands_load_sql_only_when_they_run():
    """Building `tillgate`'s parser (every command's start) imports neither SQLAlchemy nor
    Alembic; the choices the parser offers are the back office's own."""
    import subprocess
    import sys

    from gateway.backoffice import customers as records
    from gateway.cli import customers as cli

    probe = ("import sys, gateway.cli.main as m; m.build_parser(); "
             "print(sorted(k for k in ('sqlalchemy', 'alembic') if k in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    assert cli.STATUSES == records.STATUSES and cli.MAX_LIST == records.LIST_LIMIT
