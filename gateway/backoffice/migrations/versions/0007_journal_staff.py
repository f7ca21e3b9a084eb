"""Who made each journal entry (`opid`) and the reward of a claim (`rw`), for "recent
interactions" of a staff member and the claims reports (issue 19).

Revision ID: 0007
Revises: 0006
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("opid", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reward", sa.String(20), nullable=True))
        batch.create_index("ix_journal_entries_opid_t", ["opid", "t"])


def downgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_index("ix_journal_entries_opid_t")
        batch.drop_column("reward")
        batch.drop_column("opid")
