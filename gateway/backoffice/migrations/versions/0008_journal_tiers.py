"""The tier a `tier` entry moved a card to, and from (issue 19's card ranks), for the `tiers`
report ("monitoring changes in card ranks").

Revision ID: 0008
Revises: 0007
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("tier", sa.String(32), nullable=True))
        batch.add_column(sa.Column("tier_from", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_column("tier_from")
        batch.drop_column("tier")
