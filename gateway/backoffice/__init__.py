"""The back office: customers, the cards they hold, and reports, on SQL (SQLAlchemy, Alembic),
fed from the ledger's journal. Redis keeps balances and the till path; SQL keeps what people
list, filter, join and report (docs/backoffice.md). Never on the till path: a till never waits
for SQL. May import config, ledger, security, metrics.
"""
