"""Reports over the back office (docs/backoffice.md, "Reports"): one module per report, each a
`Report` (base.py) with its parameters (query.py: days in a zone, period.py; filters), its
columns and its rows; money.py writes amounts, output.py writes CSV or JSON as the rows come.
The CLI (`tillgate reports`) and the admin API (`/v1/reports/<name>`) both go through
`REPORTS` and output.py, so a report reads the same in both.
"""

from __future__ import annotations

from gateway.backoffice.reports.activations import Activations
from gateway.backoffice.reports.base import Report
from gateway.backoffice.reports.customer_activity import CustomerActivity
from gateway.backoffice.reports.liability import Liability
from gateway.backoffice.reports.tiers import Tiers
from gateway.backoffice.reports.transactions import Transactions

REPORTS: dict[str, Report] = {r.name: r for r in (
    Transactions(), Liability(), Activations(), Tiers(), CustomerActivity())}
