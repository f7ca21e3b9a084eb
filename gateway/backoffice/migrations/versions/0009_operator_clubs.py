"""The clubs a staff member belongs to (issue 17: clubs bind staff to programs): the names of
`[clubs.<name>]` of the config, space-separated; empty for none.

Revision ID: 0009
Revises: 0008
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("clubs", sa.String(1000), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("clubs")
