"""Reports over the back office (docs/backoffice.md, "Reports"): one module per report, each a
`Report` (base.py) with its parameters (query.py: days in a zone, period.py; filters), its
columns and its rows; money.py writes amounts, output.py writes CSV or JSON as the rows come.
The CLI (`tillgate reports`) and the admin API (`/v1/reports/<name>`) both run the reports of
registry.py through output.py, so a report reads the same in both. catalogue.py, query.py,
period.py and errors.py import no SQLAlchemy (the CLI's parser uses them); this package's
__init__ imports nothing.
"""
