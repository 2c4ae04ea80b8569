"""shadow_records: a deployment's primary answer beside a candidate's.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("primary_provider", sa.String(length=128), nullable=False),
        sa.Column("primary_model", sa.String(length=256), nullable=False),
        sa.Column("primary_output", sa.Text(), nullable=False),
        sa.Column("primary_latency_ms", sa.Float(), nullable=False),
        sa.Column("primary_input_tokens", sa.Integer(), nullable=False),
        sa.Column("primary_output_tokens", sa.Integer(), nullable=False),
        sa.Column("primary_cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("candidate_provider", sa.String(length=128), nullable=False),
        sa.Column("candidate_model", sa.String(length=256), nullable=False),
        sa.Column("candidate_output", sa.Text(), nullable=True),
        sa.Column("candidate_latency_ms", sa.Float(), nullable=False),
        sa.Column("candidate_input_tokens", sa.Integer(), nullable=False),
        sa.Column("candidate_output_tokens", sa.Integer(), nullable=False),
        sa.Column("candidate_cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("candidate_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_records"),
    )
    op.create_index("ix_shadow_records_created_at", "shadow_records", ["created_at"])
    op.create_index("ix_shadow_records_deployment", "shadow_records", ["deployment"])


def downgrade() -> None:
    op.drop_index("ix_shadow_records_deployment", table_name="shadow_records")
    op.drop_index("ix_shadow_records_created_at", table_name="shadow_records")
    op.drop_table("shadow_records")
