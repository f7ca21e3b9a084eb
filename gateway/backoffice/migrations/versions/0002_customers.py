"""Customers, customer types, and which customer holds which card.

Revision ID: 0002
Revises: 0001
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_types",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("default_program", sa.String(32), nullable=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_customer_types"),
        sa.UniqueConstraint("name", name="uq_customer_types_name"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("customer_type_id", sa.Integer, nullable=True),
        sa.Column("status", sa.String(8), nullable=False, server_default="active"),
        sa.Column("consent", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("consent_t", sa.BigInteger, nullable=True),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("created_t", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        sa.UniqueConstraint("code", name="uq_customers_code"),
        sa.ForeignKeyConstraint(["customer_type_id"], ["customer_types.id"],
                                name="fk_customers_customer_type_id_customer_types"),
    )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_table(
        "card_holders",
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("card_mask", sa.String(32), nullable=False),
        sa.Column("program", sa.String(32), nullable=True),
        sa.Column("linked_t", sa.BigInteger, nullable=False),
        sa.Column("linked_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("card_id", name="pk_card_holders"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name="fk_card_holders_customer_id_customers"),
    )
    op.create_index("ix_card_holders_customer_id", "card_holders", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_card_holders_customer_id", "card_holders")
    op.drop_table("card_holders")
    op.drop_index("ix_customers_email", "customers")
    op.drop_table("customers")
    op.drop_table("customer_types")
