"""E-cards: orders of e-gift cards and their durable e-mail delivery queue (issue 18).

Revision ID: 0012
Revises: 0009
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ecards",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("load", sa.String(12), nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("card_mask", sa.String(32), nullable=False),
        sa.Column("card_sealed", sa.Text, nullable=False),
        sa.Column("pin_sealed", sa.Text, nullable=True),
        sa.Column("recipient_name", sa.String(200), nullable=False),
        sa.Column("recipient_email", sa.String(254), nullable=False),
        sa.Column("sender_name", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("deliver_t", sa.BigInteger, nullable=False),
        sa.Column("due_t", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("next_t", sa.BigInteger, nullable=False),
        sa.Column("lease_t", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_t", sa.BigInteger, nullable=False),
        sa.Column("sent_t", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ecards"),
    )
    op.create_index("ix_ecards_state_next_t", "ecards", ["state", "next_t"])
    op.create_index("ix_ecards_created_t", "ecards", ["created_t"])


def downgrade() -> None:
    op.drop_index("ix_ecards_created_t", "ecards")
    op.drop_index("ix_ecards_state_next_t", "ecards")
    op.drop_table("ecards")
