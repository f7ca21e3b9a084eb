"""Operators: the people who log into the web portal, their roles and second factor.

Revision ID: 0006
Revises: 0005 (the newest on main when this was merged; 0003 of the feed comes in between when
it lands, and the lead chains it)
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("merchant", sa.String(16), nullable=True),
        sa.Column("status", sa.String(8), nullable=False, server_default="active"),
        sa.Column("second_factor", sa.String(8), nullable=False, server_default="totp"),
        sa.Column("totp_secret", sa.Text, nullable=True),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True),
        sa.Column("session_gen", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_t", sa.BigInteger, nullable=False),
        sa.Column("password_t", sa.BigInteger, nullable=True),
        sa.Column("last_login_t", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("email", name="uq_operators_email"),
    )
    op.create_index("ix_operators_merchant", "operators", ["merchant"])


def downgrade() -> None:
    op.drop_index("ix_operators_merchant", "operators")
    op.drop_table("operators")
