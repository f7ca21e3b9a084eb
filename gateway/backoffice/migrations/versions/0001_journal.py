"""The journal's entries and each card's last known state.

Revision ID: 0001
Revises:
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("card_mask", sa.String(32), nullable=False),
        sa.Column("program", sa.String(32), nullable=True),
        sa.Column("dv", sa.BigInteger, nullable=False),
        sa.Column("dp", sa.BigInteger, nullable=False),
        sa.Column("bal", sa.BigInteger, nullable=False),
        sa.Column("pts", sa.BigInteger, nullable=False),
        sa.Column("terminal", sa.String(16), nullable=False),
        sa.Column("merchant", sa.String(16), nullable=False),
        sa.Column("request_key", sa.String(80), nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("undo", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("card_id", "entry_id", name="pk_journal_entries"),
    )
    op.create_index("ix_journal_entries_t", "journal_entries", ["t"])
    op.create_table(
        "cards",
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("card_mask", sa.String(32), nullable=False),
        sa.Column("program", sa.String(32), nullable=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("first_t", sa.BigInteger, nullable=False),
        sa.Column("last_t", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("card_id", name="pk_cards"),
    )


def downgrade() -> None:
    op.drop_table("cards")
    op.drop_index("ix_journal_entries_t", "journal_entries")
    op.drop_table("journal_entries")
