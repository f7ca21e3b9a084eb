"""Back-office reports on a real SQLite and a real PostgreSQL (`backoffice_url`): each report's
figures against expectations computed by hand from the rows tests/reportdata.py writes (as the
feed would), the filters, the edges of a day (23:59:59 and 00:00:00) in UTC and in a zone, and
the CSV and JSON forms."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from reportdata import CARD_A, CARD_B, MASK, at, config_for, fill, journal_rows

from gateway.backoffice.connect import backoffice_session
from gateway.backoffice.reports.base import BATCH
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.output import report_chunks
from gateway.backoffice.reports.period import Period, offsets_between
from gateway.backoffice.reports.query import parse_query
from gateway.backoffice.reports.registry import REPORTS
from gateway.reactor import deferred_from_coro

ENTRY_HEADER = "row,time,card,op,program,merchant,terminal,request_key,count,amount,points\n"


async def chunks_of(config, name: str, fmt: str = "csv", **params: str | list[str]
                    ) -> list[str]:
    report = REPORTS[name]
    raw = {k.rstrip("_").replace("_", "-"): v if isinstance(v, list) else [v]
           for k, v in params.items()}
    query = parse_query(raw, report.takes, as_of=report.as_of)

    async def run():
        async with backoffice_session(config, migrate=False) as engine:
            return [c async for c in report_chunks(engine, config, report, query, fmt)]
    return await deferred_from_coro(run())


async def report(config, name: str, **params: str | list[str]) -> str:
    return "".join(await chunks_of(config, name, **params))


async def filled(backoffice_url, tmp_path, rows=None):
    config = config_for(backoffice_url, tmp_path)
    await deferred_from_coro(fill(config, rows))
    return config


@pytest_twisted.ensureDeferred
async def test_transactions_of_a_day_from_its_first_to_its_last_second(backoffice_url,
                                                                        tmp_path):
    config = await filled(backoffice_url, tmp_path)
    text = await report(config, "transactions", from_="2026-11-24", to="2026-11-24")
    assert text == ENTRY_HEADER + (
        # 23:59:59 the day before and 00:00:00 the day after are out; money with the
        # currency's decimals (yen has none), points as integers
        "entry,2026-11-24T00:00:00Z,603953*********0018,redeem,gift,STORE0000000001,TILL0001,"
        "k-a2,1,-12.50,0\n"
        "entry,2026-11-24T10:00:00Z,603953*********0026,activate,gift,STORE0000000001,"
        "TILL0002,k-b1,1,50.00,0\n"
        "entry,2026-11-24T12:00:00Z,77******12,earn,loyalty,STORE0000000001,TILL0001,k-l1,1,"
        "0.00,120\n"
        "entry,2026-11-24T13:00:00Z,603955******0011,activate,yen,BHNRESELLER0001,BHN00001,"
        "bhn-2,1,3000,0\n"
        "entry,2026-11-24T23:59:59Z,603953*********0026,redeem,gift,STORE0000000001,TILL0001,"
        "k-b2,1,-19.99,0\n"
        "total,,,activate,gift,,,,1,50.00,0\n"
        "total,,,activate,yen,,,,1,3000,0\n"
        "total,,,earn,loyalty,,,,1,0.00,120\n"
        "total,,,redeem,gift,,,,2,-32.49,0\n")


def keys(text: str) -> list[str]:
    """The request keys of a transactions CSV's entry rows, in order."""
    return [line.split(",")[7] for line in text.splitlines() if line.startswith("entry,")]


@pytest_twisted.ensureDeferred
async def test_transactions_filters(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    days = {"from_": "2026-11-23", "to": "2026-11-25"}
    assert keys(await report(config, "transactions", **days, merchant="BHNRESELLER0001")) == [
        "bhn-1", "bhn-2"]
    assert keys(await report(config, "transactions", **days, terminal="TILL0002")) == [
        "k-b1", "k-a3"]
    assert keys(await report(config, "transactions", **days, op=["redeem", "earn"])) == [
        "k-a2", "k-l1", "k-b2"]
    assert keys(await report(config, "transactions", **days, program="yen")) == ["bhn-2"]
    # card B is held by C2, of type basic; A and L by C1 (gold)
    basic = await report(config, "transactions", **days, customer_type="basic")
    assert keys(basic) == ["k-b1", "k-b2"]
    assert basic.endswith("total,,,activate,gift,,,,1,50.00,0\n"
                          "total,,,redeem,gift,,,,1,-19.99,0\n")
    both = await report(config, "transactions", **days, customer_type=["basic", "gold"],
                        op="redeem", merchant="STORE0000000001", terminal="TILL0001")
    assert keys(both) == ["k-a2", "k-b2"]
    with pytest.raises(ReportError, match="customer-type: no customer type 'silver'"):
        await report(config, "transactions", **days, customer_type="silver")


@pytest_twisted.ensureDeferred
async def test_transactions_days_in_a_zone(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    # 23 November in New York (UTC-5) is 05:00 UTC on the 23rd to 05:00 UTC on the 24th
    text = await report(config, "transactions", from_="2026-11-23", to="2026-11-23",
                        tz="America/New_York")
    assert [line.split(",")[1] for line in text.splitlines()[1:3]] == [
        "2026-11-23T18:59:59-05:00", "2026-11-23T19:00:00-05:00"]
    assert keys(text) == ["bhn-1", "k-a2"]


@pytest_twisted.ensureDeferred
async def test_transactions_summary_by_day_and_by_merchant(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    days = {"from_": "2026-11-23", "to": "2026-11-25"}
    assert await report(config, "transactions", **days, group_by="day") == (
        "day,program,count,amount,points\n"
        "2026-11-23,gift,1,25.00,0\n"
        "2026-11-24,gift,3,17.51,0\n"
        "2026-11-24,loyalty,1,0.00,120\n"
        "2026-11-24,yen,1,3000,0\n"
        "2026-11-25,gift,1,10.00,0\n")
    answer = json.loads(await report(config, "transactions", fmt="json", from_="2026-11-24",
                                     to="2026-11-24", group_by="merchant", op="redeem"))
    assert answer == {"report": "transactions", "from": "2026-11-24", "to": "2026-11-24",
                      "tz": "UTC", "columns": ["merchant", "program", "count", "amount",
                                               "points"],
                      "rows": [{"merchant": "STORE0000000001", "program": "gift", "count": 2,
                                "amount": "-32.49", "points": 0}]}
    assert await report(config, "transactions", **days, group_by="program", op="activate") == (
        "program,count,amount,points\ngift,2,75.00,0\nyen,1,3000,0\n")


@pytest_twisted.ensureDeferred
async def test_days_across_a_change_of_summer_time(backoffice_url, tmp_path):
    """Paris leaves summer time at 01:00 UTC on 25 October 2026: that local day has 25 hours,
    and grouping by day must put each entry on its local day on both sides of the change."""
    rows = journal_rows([
        (CARD_A, 1, "activate", 1000, 0, 1000, 0, "TILL0001", "STORE0000000001", "last-24",
         "2026-10-24 21:59:59"),   # 23:59:59 CEST, the 24th
        (CARD_A, 2, "redeem", -100, 0, 900, 0, "TILL0001", "STORE0000000001", "first-25",
         "2026-10-24 22:00:00"),   # 00:00:00 CEST, the 25th
        (CARD_A, 3, "redeem", -100, 0, 800, 0, "TILL0001", "STORE0000000001", "last-25",
         "2026-10-25 22:59:59"),   # 23:59:59 CET, the 25th
        (CARD_A, 4, "redeem", -100, 0, 700, 0, "TILL0001", "STORE0000000001", "first-26",
         "2026-10-25 23:00:00"),   # 00:00:00 CET, the 26th
    ])
    config = await filled(backoffice_url, tmp_path, rows)
    paris = {"from_": "2026-10-24", "to": "2026-10-26", "tz": "Europe/Paris"}
    assert await report(config, "transactions", **paris, group_by="day") == (
        "day,program,count,amount,points\n"
        "2026-10-24,gift,1,10.00,0\n2026-10-25,gift,2,-2.00,0\n2026-10-26,gift,1,-1.00,0\n")
    text = await report(config, "transactions", from_="2026-10-25", to="2026-10-25",
                        tz="Europe/Paris")
    assert keys(text) == ["first-25", "last-25"]
    assert [line.split(",")[1] for line in text.splitlines()[1:3]] == [
        "2026-10-25T00:00:00+02:00", "2026-10-25T23:59:59+01:00"]


def test_offsets_of_a_zone_change_to_the_second():
    paris = Period(dt.date(2026, 10, 24), dt.date(2026, 10, 26), ZoneInfo("Europe/Paris"))
    assert offsets_between(paris.start, paris.end, paris.tz) == [
        (at("2026-10-25 01:00:00"), 7200), (paris.end, 3600)]
    utc = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31), dt.UTC)
    assert offsets_between(utc.start, utc.end, utc.tz) == [(utc.end, 0)]


@pytest_twisted.ensureDeferred
async def test_liability_as_of_the_end_of_a_day(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    header = "as_of,program,cards,balance,points\n"
    # A's last entry by then: 1,250 (its reload is on the 25th); B 3,001; L 120 points
    assert await report(config, "liability", to="2026-11-24") == header + (
        "2026-11-24,gift,2,42.51,0\n2026-11-24,loyalty,1,0.00,120\n2026-11-24,yen,1,3000,0\n")
    assert await report(config, "liability", to="2026-11-23") == header + (
        "2026-11-23,gift,1,25.00,0\n")
    assert await report(config, "liability", to="2026-11-25", program="gift") == header + (
        "2026-11-25,gift,2,52.51,0\n")
    assert await report(config, "liability", to="2026-11-22") == header


@pytest_twisted.ensureDeferred
async def test_activations_and_loads_by_reseller_and_day(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    header = "day,reseller,program,activations,activated,loads,loaded,reversals,reversed\n"
    # BHNRESELLER0001 is blackhawk's (config); STORE0000000001 has no reseller
    assert await report(config, "activations", from_="2026-11-23", to="2026-11-25") == (
        header + "2026-11-23,blackhawk,gift,1,25.00,0,0.00,0,0.00\n"
                 "2026-11-24,,gift,1,50.00,0,0.00,0,0.00\n"
                 "2026-11-24,blackhawk,yen,1,3000,0,0,0,0\n"
                 "2026-11-25,,gift,0,0.00,1,10.00,0,0.00\n")
    assert await report(config, "activations", from_="2026-11-24", to="2026-11-25",
                        reseller="blackhawk") == header + (
        "2026-11-24,blackhawk,yen,1,3000,0,0,0,0\n")
    with pytest.raises(ReportError, match="reseller: unknown reseller 'incomm'"):
        await report(config, "activations", from_="2026-11-24", to="2026-11-25",
                     reseller="incomm")


@pytest_twisted.ensureDeferred
async def test_activations_count_their_reversals_on_the_day_of_the_undo(backoffice_url,
                                                                       tmp_path):
    rows = journal_rows([
        (CARD_A, 1, "activate", 2500, 0, 2500, 0, "BHN00001", "BHNRESELLER0001", "bhn-1",
         "2026-11-24 10:00:00"),
        (CARD_B, 1, "activate", 5000, 0, 5000, 0, "TILL0002", "STORE0000000001", "k-b1",
         "2026-11-24 11:00:00"),
        (CARD_B, 2, "reload", 1000, 0, 6000, 0, "TILL0002", "STORE0000000001", "k-b2",
         "2026-11-24 12:00:00"),
        (CARD_B, 3, "redeem", -500, 0, 5500, 0, "TILL0002", "STORE0000000001", "k-b3",
         "2026-11-24 13:00:00"),
        (CARD_B, 4, "void", -1000, 0, 4500, 0, "TILL0002", "STORE0000000001", "k-b4",
         "2026-11-24 12:30:00"),   # the load voided the same day
        (CARD_B, 5, "void", 500, 0, 5000, 0, "TILL0002", "STORE0000000001", "k-b5",
         "2026-11-24 13:30:00"),   # a redemption voided: no activation or load, not here
        (CARD_A, 2, "reversal", -2500, 0, 0, 0, "BHN00001", "BHNRESELLER0001", "bhn-1r",
         "2026-11-25 00:00:00"),   # the activation reversed the next day
    ])
    rows[4]["undo"], rows[5]["undo"] = rows[2]["entry_id"], rows[3]["entry_id"]
    rows[6]["undo"] = rows[0]["entry_id"]
    config = await filled(backoffice_url, tmp_path, rows)
    assert await report(config, "activations", from_="2026-11-24", to="2026-11-25") == (
        "day,reseller,program,activations,activated,loads,loaded,reversals,reversed\n"
        "2026-11-24,,gift,1,50.00,1,10.00,1,-10.00\n"
        "2026-11-24,blackhawk,gift,1,25.00,0,0.00,0,0.00\n"
        "2026-11-25,blackhawk,gift,0,0.00,0,0.00,1,-25.00\n")


@pytest_twisted.ensureDeferred
async def test_tiers_lists_each_change_of_rank(backoffice_url, tmp_path):
    header = "time,card,program,tier_from,tier_to,points,merchant,terminal,request_key\n"
    tier_rows = journal_rows([
        (CARD_B, 3, "tier", 0, 0, 3001, 0, "OPERATOR", "OPERATOR", "tier-1",
         "2026-11-24 18:00:00")])
    tier_rows[0].update(tier="SILVER", tier_from="BRONZE")  # as the feed writes a tier entry
    config = await filled(backoffice_url, tmp_path / "with", journal_rows() + tier_rows)
    assert await report(config, "tiers", from_="2026-11-24", to="2026-11-24") == header + (
        f"2026-11-24T18:00:00Z,{MASK[CARD_B]},gift,BRONZE,SILVER,0,OPERATOR,OPERATOR,tier-1\n")
    assert await report(config, "tiers", from_="2026-11-25", to="2026-11-30") == header


@pytest_twisted.ensureDeferred
async def test_customer_activity(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path)
    header = ("customer,name,customer_type,cards,visits,spend,points,visits_per_week,"
              "last_visit\n")
    week = {"from_": "2026-11-24", "to": "2026-11-30", "program": ["gift", "loyalty"]}
    # C1 (cards A and L): A's redemption and L's earn; C2 (card B): B's redemption (its
    # activation is no visit); C3 holds no card. 7 days: visits per week = visits.
    assert await report(config, "customer-activity", **week) == header + (
        "C1,Ada Lovelace,gold,2,2,12.50,120,2.00,2026-11-24T12:00:00Z\n"
        "C2,Alan Turing,basic,1,1,19.99,0,1.00,2026-11-24T23:59:59Z\n"
        "C3,Grace Hopper,gold,0,0,0.00,0,0.00,\n")
    gold = await report(config, "customer-activity", **week, customer_type="gold")
    assert [line.split(",")[0] for line in gold.splitlines()[1:]] == ["C1", "C3"]
    fortnight = await report(config, "customer-activity", from_="2026-11-17", to="2026-11-30",
                             program="gift", merchant="STORE0000000001")
    assert fortnight.splitlines()[1] == "C1,Ada Lovelace,gold,2,1,12.50,0,0.50," \
                                        "2026-11-24T00:00:00Z"
    # gift (2 decimals) and yen (none) cannot be added up: the report says which to name
    with pytest.raises(ReportError, match=r"program: .*gift: 2.*yen: 0"):
        await report(config, "customer-activity", from_="2026-11-24", to="2026-11-30")


@pytest_twisted.ensureDeferred
async def test_a_large_report_is_written_in_chunks_as_rows_come(backoffice_url, tmp_path):
    count = BATCH * 2 + 5
    start = at("2026-11-24 00:00:00")
    rows = [{"card_id": f"{n:032x}", "entry_id": f"{start}000-{n}", "seq": 1, "op": "activate",
             "card_mask": "603953*********0018", "program": "gift", "dv": 2500, "dp": 0,
             "bal": 2500, "pts": 0, "terminal": "TILL0001", "merchant": "STORE0000000001",
             "request_key": f"k{n}", "t": start + n % 86400, "undo": None}
            for n in range(count)]
    config = await filled(backoffice_url, tmp_path, rows)
    chunks = await chunks_of(config, "transactions", from_="2026-11-24", to="2026-11-24")
    assert len(chunks) >= 4  # header, one chunk per batch, totals
    assert max(c.count("\n") for c in chunks) <= BATCH
    assert chunks[-2] == f"total,,,activate,gift,,,,{count},{count * 25}.00,0\n"
    lines = "".join(chunks).splitlines()
    assert len(lines) == 1 + count + 1


@pytest.mark.parametrize("raw, takes, error", [
    ({}, {"merchant"}, "from: required"),
    ({"from": ["2026-11-24"]}, {"merchant"}, "to: required"),
    ({"from": ["2026-13-01"], "to": ["2026-11-24"]}, set(), "from: '2026-13-01': expected a "
                                                           "date, YYYY-MM-DD"),
    ({"from": ["2026-11-24"], "to": ["2026-11-23"]}, set(), "to: 2026-11-23 is before from"),
    ({"from": ["2026-11-24"], "to": ["2026-11-24"], "op": ["refill"]}, {"op"},
     "op: unknown operation 'refill'"),
    ({"from": ["2026-11-24"], "to": ["2026-11-24"], "group-by": ["year"]}, {"group-by"},
     "group-by: 'year': one of day, week, month, merchant"),
    ({"from": ["2026-11-24"], "to": ["2026-11-24"], "tz": ["Mars/Olympus"]}, set(),
     "tz: unknown time zone 'Mars/Olympus'"),
    ({"from": ["2026-11-24"], "to": ["2026-11-24"], "merchant": ["M"]}, set(),
     "merchant: not a parameter of this report"),
    ({"from": ["2026-11-24"], "to": ["2026-11-24"], "store": ["M"]}, set(),
     "store: unknown parameter"),
    ({"from": ["2026-11-24", "2026-11-25"], "to": ["2026-11-24"]}, set(),
     "from: given more than once"),
])
def test_bad_parameters_are_named(raw, takes, error):
    with pytest.raises(ReportError, match=error.replace("(", r"\(")):
        parse_query(raw, frozenset(takes))


def test_liability_is_as_of_one_day():
    with pytest.raises(ReportError, match="from: this report is as of one day"):
        parse_query({"from": ["2026-11-01"], "to": ["2026-11-24"]}, frozenset(), as_of=True)
    query = parse_query({}, frozenset(), as_of=True, today=dt.date(2026, 12, 5))
    assert (query.period.first, query.period.last) == (dt.date(2026, 12, 5),) * 2


def test_every_report_has_a_distinct_name_and_its_columns():
    query = parse_query({"from": ["2026-11-24"], "to": ["2026-11-24"]}, frozenset())
    for name, each in REPORTS.items():
        assert each.name == name and each.summary
        columns = each.columns(query)
        assert len(set(columns)) == len(columns)

