"""Every report by name (catalogue.NAMES, in that order): what the CLI and the admin API run."""

from __future__ import annotations

from gateway.backoffice.reports.activations import Activations
from gateway.backoffice.reports.analytics import Analytics
from gateway.backoffice.reports.base import Report
from gateway.backoffice.reports.customer_activity import CustomerActivity
from gateway.backoffice.reports.liability import Liability
from gateway.backoffice.reports.staff import Staff
from gateway.backoffice.reports.tiers import Tiers
from gateway.backoffice.reports.transactions import Transactions

REPORTS: dict[str, Report] = {r.name: r for r in (
    Transactions(), Liability(), Activations(), Tiers(), CustomerActivity(), Analytics(),
    Staff())}
