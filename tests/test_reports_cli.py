"""`tillgate reports` as a subprocess, on a real SQLite and PostgreSQL back office filled as
the feed would (tests/reportdata.py): CSV on stdout or into a file, JSON, and bad parameters or
a back office not yet migrated said in one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest_twisted
from reportdata import config_file, config_for, fill

from gateway.backoffice.migrate import head_revision
from gateway.reactor import deferred_from_coro


def tillgate(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "reports", *args,
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=120)


@pytest_twisted.ensureDeferred
async def test_report_to_stdout_and_into_a_file(backoffice_url, tmp_path):
    await deferred_from_coro(fill(config_for(backoffice_url, tmp_path)))
    config = config_file(backoffice_url, tmp_path)
    shown = tillgate(config, "liability", "--to", "2026-11-24")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == ("as_of,program,cards,balance,points\n2026-11-24,gift,2,42.51,0\n"
                            "2026-11-24,loyalty,1,0.00,120\n2026-11-24,yen,1,3000,0\n")
    assert shown.stderr == "liability 2026-11-24 (UTC): 3 row(s)\n"

    out = tmp_path / "nov.csv"
    done = tillgate(config, "transactions", "--from", "2026-11-24", "--to", "2026-11-25",
                    "--merchant", "STORE0000000001", "--op", "redeem", "--op", "reload",
                    "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.read_text() == (
        "row,time,card,op,program,merchant,terminal,request_key,count,amount,points\n"
        "entry,2026-11-24T00:00:00Z,603953*********0018,redeem,gift,STORE0000000001,TILL0001,"
        "k-a2,1,-12.50,0\n"
        "entry,2026-11-24T23:59:59Z,603953*********0026,redeem,gift,STORE0000000001,TILL0001,"
        "k-b2,1,-19.99,0\n"
        "entry,2026-11-25T00:00:00Z,603953*********0018,reload,gift,STORE0000000001,TILL0002,"
        "k-a3,1,10.00,0\n"
        "total,,,redeem,gift,,,,2,-32.49,0\n"
        "total,,,reload,gift,,,,1,10.00,0\n")
    assert done.stderr == f"transactions 2026-11-24..2026-11-25 (UTC): 5 row(s) into {out}\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []

    as_json = tillgate(config, "customer-activity", "--from", "2026-11-24", "--to",
                       "2026-11-30", "--program", "gift", "--customer-type", "basic",
                       "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["rows"] == [
        {"customer": "C2", "name": "Alan Turing", "customer_type": "basic", "cards": 1,
         "visits": 1, "spend": "19.99", "points": 0, "visits_per_week": "1.00",
         "last_visit": "2026-11-24T23:59:59Z"}]


@pytest_twisted.ensureDeferred
async def test_bad_parameters_exit_2_with_one_line(tmp_path):
    """On SQLite only: the same checks are made before any SQL, or (customer types) by the
    same code on both databases in tests/test_reports.py."""
    url = f"sqlite:///{tmp_path / 'backoffice.sqlite3'}"
    await deferred_from_coro(fill(config_for(url, tmp_path)))
    config = config_file(url, tmp_path)
    out = tmp_path / "never.csv"
    for args, message in [
        (("transactions", "--to", "2026-11-24"), "--from: required (a date, YYYY-MM-DD)"),
        (("transactions", "--from", "24/11/2026", "--to", "2026-11-24"),
         "--from: '24/11/2026': expected a date, YYYY-MM-DD"),
        (("liability", "--from", "2026-11-01", "--to", "2026-11-24"),
         "--from: this report is as of one day: give --to only"),
        (("activations", "--from", "2026-11-24", "--to", "2026-11-24", "--terminal", "T"),
         "--terminal: not a parameter of this report"),
        (("transactions", "--from", "2026-11-24", "--to", "2026-11-24", "--customer-type",
          "platinum", "--out", str(out)), "--customer-type: no customer type 'platinum'"),
        (("customer-activity", "--from", "2026-11-24", "--to", "2026-11-24"),
         "--program: the programs' currencies have different decimals"),
    ]:
        done = tillgate(config, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(f"tillgate: {message}"), done.stderr
        assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert not out.exists()  # failed before a row: no file, not even a partial one
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_back_office_not_migrated_is_said(tmp_path):
    config = config_file(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path)
    done = tillgate(config, "liability")
    assert done.returncode == 2
    assert done.stderr == ("tillgate: the back office is at revision none, reports need "
                           f"{head_revision()}: run tillgate backoffice migrate\n")


def test_the_parser_loads_no_sql_library():
    """`tillgate reports` is in the parser of every command: building it must not import
    SQLAlchemy or Alembic (some 0.4 s on each start); the command loads them when it runs."""
    probe = ("import sys; from gateway.cli.main import build_parser; build_parser(); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


def test_the_catalogue_names_every_report_in_order():
    from gateway.backoffice.reports.catalogue import NAMES, SUMMARIES
    from gateway.backoffice.reports.registry import REPORTS

    assert tuple(REPORTS) == NAMES
    assert {name: r.summary for name, r in REPORTS.items()} == SUMMARIES
