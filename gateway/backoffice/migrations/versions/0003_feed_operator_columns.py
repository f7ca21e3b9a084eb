"""Journal entries keep an operator's name whole: terminal, merchant and request key as text.

A till's terminal is at most 8 characters and its merchant 15, but an operator's change is
journaled with `token:<token id>` in both (a token made at run time alone is 11 characters, a
configured one as long as its id), and PostgreSQL refused the row with "value too long": the feed
consumer then retried that batch for ever. Text has no length to exceed; `op` gets room beyond
`status:reinstate`, which filled its 16 characters exactly.

Revision ID: 0003
Revises: 0002
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WIDENED = {"terminal": (sa.String(16), sa.Text()), "merchant": (sa.String(16), sa.Text()),
           "request_key": (sa.String(80), sa.Text()), "op": (sa.String(16), sa.String(32))}


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:  # SQLite: a copy of the table
        for column, (before, after) in WIDENED.items():
            batch.alter_column(column, existing_type=before, type_=after, existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        for column, (before, after) in WIDENED.items():
            batch.alter_column(column, existing_type=after, type_=before, existing_nullable=False)
