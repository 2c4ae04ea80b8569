"""deployment_versions: numbered specs of each deployment.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "deployment_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_versions"),
        sa.UniqueConstraint("name", "version", name="uq_deployment_versions_name_version"),
    )
    op.create_index("ix_deployment_versions_name", "deployment_versions", ["name"])


def downgrade() -> None:
    op.drop_index("ix_deployment_versions_name", table_name="deployment_versions")
    op.drop_table("deployment_versions")
