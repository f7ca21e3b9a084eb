"""Per-day summaries of the journal for the analytics and staff reports (issue 17's last bar:
a year of a busy program in under 100 ms), and the merchants each card has an entry at (a
manager's customers), built here from the journal already written.

The days are each program's local days: `tillgate serve` and `backoffice migrate` pass the
config's program zones (migrate.upgrade's `zones`); without them (a bare upgrade) a program's
summaries are in UTC, and a report in another zone reads the journal until they are rebuilt.

Revision ID: 0013
Revises: 0012
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SUMS = ("entries", "dv", "dp", "rewards")


def _sums() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in SUMS]


def upgrade() -> None:
    op.create_table(
        "day_sums",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("program", "day", "merchant", "op", name="pk_day_sums"),
    )
    op.create_table(
        "staff_day_sums",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("opid", sa.String(64), nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("program", "day", "merchant", "opid", "op",
                                name="pk_staff_day_sums"),
    )
    op.create_table(
        "staff_card_days",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("opid", sa.String(64), nullable=False),
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("program", "day", "opid", "merchant", "card_id",
                                name="pk_staff_card_days"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "card_stretches",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("key", sa.Integer, nullable=False),
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("program", "kind", "key", "merchant", "card_id",
                                name="pk_card_stretches"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "active_counts",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("key", sa.Integer, nullable=False),
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("cards", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("program", "kind", "key", "merchant", name="pk_active_counts"),
    )
    op.create_table(
        "card_merchants",
        sa.Column("merchant", sa.Text, nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("merchant", "card_id", name="pk_card_merchants"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "summary_zones",
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("program", name="pk_summary_zones"),
    )
    # The code of today sums the journal of today; a later change of the summaries comes
    # with a migration of its own that rebuilds them.
    from gateway.backoffice.summaries import rebuild

    rebuild(op.get_bind(), context.config.attributes.get("zones") or {})


def downgrade() -> None:
    for table in ("summary_zones", "card_merchants", "active_counts", "card_stretches",
                  "staff_card_days", "staff_day_sums", "day_sums"):
        op.drop_table(table)
