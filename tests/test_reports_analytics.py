"""The `analytics` and `staff` reports (the portal's analytics and staff report pages read
them) on a real SQLite and a real PostgreSQL: figures by day, week and month against the rows
written, every stretch listed (zeros too), staff per opid and program, the merchant filter a
manager gets, and `transactions --group-by week|month` on the same buckets."""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_twisted
from analyticsdata import rows
from reportdata import config_file
from test_admin_reports import call, gateway_on
from test_reports import filled, report
from test_reports_cli import tillgate

from gateway.backoffice.reports.buckets import all_keys, label
from gateway.backoffice.reports.errors import ReportError
from gateway.backoffice.reports.period import Period, parse_day
from gateway.reactor import deferred_from_coro

HEAD = ("day,program,activations,loads,loaded,redemptions,redeemed,points_accrued,"
        "rewards_redeemed,active_cards\n")


@pytest_twisted.ensureDeferred
async def test_analytics_by_day(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path, rows())
    text = await report(config, "analytics", from_="2026-11-23", to="2026-11-25",
                        program=["gift", "loyalty"])
    assert text == HEAD + (
        "2026-11-23,gift,1,0,0.00,0,0.00,0,0,1\n"
        "2026-11-23,loyalty,0,0,0.00,0,0.00,0,0,0\n"
        "2026-11-24,gift,1,0,0.00,2,32.49,0,0,2\n"
        "2026-11-24,loyalty,0,0,0.00,0,0.00,320,1,1\n"
        "2026-11-25,gift,0,1,10.00,0,0.00,0,0,1\n"
        "2026-11-25,loyalty,0,0,0.00,0,0.00,50,0,1\n")


@pytest_twisted.ensureDeferred
async def test_analytics_by_week_and_month_and_merchant(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path, rows())
    weekly = await report(config, "analytics", from_="2026-11-20", to="2026-12-01",
                          program="loyalty", group_by="week")
    # weeks from Monday: the 20th's week is named by the 20th (the period's first day)
    assert weekly.splitlines()[1:] == [
        "2026-11-20,loyalty,0,0,0.00,0,0.00,0,0,0",
        "2026-11-23,loyalty,0,0,0.00,0,0.00,370,1,2",  # 23rd-29th: cards L and M
        # Monday 30th: 25 points; the 1 December points spent name no reward
        "2026-11-30,loyalty,0,0,0.00,0,0.00,25,0,1"]
    monthly = await report(config, "analytics", from_="2026-11-01", to="2026-12-31",
                           program="loyalty", group_by="month")
    assert monthly.splitlines()[0].startswith("month,program,")
    assert monthly.splitlines()[1:] == ["2026-11-01,loyalty,0,0,0.00,0,0.00,395,1,2",
                                        "2026-12-01,loyalty,0,0,0.00,0,0.00,0,0,1"]
    mine = await report(config, "analytics", from_="2026-11-01", to="2026-11-30",
                        program="loyalty", group_by="month", merchant="STORE0000000001")
    assert mine.splitlines()[1:] == ["2026-11-01,loyalty,0,0,0.00,0,0.00,370,1,2"]
    with pytest.raises(ReportError, match="group-by"):
        await report(config, "analytics", from_="2026-11-01", to="2026-11-30",
                     group_by="merchant")


@pytest_twisted.ensureDeferred
async def test_staff_report(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path, rows())
    text = await report(config, "staff", from_="2026-11-01", to="2026-12-31")
    assert text.splitlines() == [
        "opid,program,transactions,points_awarded,rewards_validated,loaded,redeemed,"
        "members_served",
        "ANNA,loyalty,3,250,1,0.00,0.00,2",
        "BERT,loyalty,2,25,0,0.00,0.00,1"]
    mine = await report(config, "staff", from_="2026-11-01", to="2026-12-31",
                        merchant="STORE0000000001")
    assert mine.splitlines()[1:] == ["ANNA,loyalty,3,250,1,0.00,0.00,2"]
    one = await report(config, "staff", from_="2026-11-25", to="2026-11-25", opid="ANNA")
    assert one.splitlines()[1:] == ["ANNA,loyalty,1,50,0,0.00,0.00,1"]


@pytest_twisted.ensureDeferred
async def test_transactions_by_week(backoffice_url, tmp_path):
    config = await filled(backoffice_url, tmp_path, rows())
    text = await report(config, "transactions", from_="2026-11-23", to="2026-11-25",
                        program="gift", group_by="week")
    assert text.splitlines() == ["week,program,count,amount,points",
                                 "2026-11-23,gift,5,52.51,0"]


def test_buckets_of_a_period_cut_mid_week_and_mid_month():
    period = Period(parse_day("from", "2026-11-28"), parse_day("to", "2026-12-02"),
                    __import__("datetime").UTC)
    assert [label(period, "week", k) for k in all_keys(period, "week")] == [
        "2026-11-28", "2026-11-30"]
    assert [label(period, "month", k) for k in all_keys(period, "month")] == [
        "2026-11-28", "2026-12-01"]
    assert len(all_keys(period, "day")) == 5


@pytest_twisted.ensureDeferred
async def test_staff_and_analytics_through_the_cli_and_the_admin_api(
        tillgate_inprocess_factory, backoffice_url, tmp_path, monkeypatch):
    """One code path: `tillgate reports staff` (a subprocess) and `/v1/reports/staff` give the
    rows the report gives (and the portal shows)."""
    await filled(backoffice_url, tmp_path, rows())
    expected = ("opid,program,transactions,points_awarded,rewards_validated,loaded,redeemed,"
                "members_served\nANNA,loyalty,3,250,1,0.00,0.00,2\n")
    done = await deferred_from_coro(asyncio.to_thread(
        tillgate, config_file(backoffice_url, tmp_path), "staff", "--from", "2026-11-01",
        "--to", "2026-12-31", "--opid", "ANNA"))
    assert (done.returncode, done.stdout) == (0, expected), done.stderr
    port = await gateway_on(tillgate_inprocess_factory, backoffice_url, monkeypatch)
    status, headers, body = await call(port, "/v1/reports/staff?from=2026-11-01&to=2026-12-31"
                                             "&opid=ANNA&format=csv")
    assert (status, body.decode()) == (200, expected)
    status, _, body = await call(port, "/v1/reports/analytics?from=2026-11-01&to=2026-11-30"
                                       "&program=loyalty&group-by=month")
    assert status == 200 and json.loads(body)["rows"] == [
        {"month": "2026-11-01", "program": "loyalty", "activations": 0, "loads": 0,
         "loaded": "0.00", "redemptions": 0, "redeemed": "0.00", "points_accrued": 395,
         "rewards_redeemed": 1, "active_cards": 2}]
