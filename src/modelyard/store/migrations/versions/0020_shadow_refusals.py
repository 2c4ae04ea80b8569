"""shadow_records: add primary_refusal and candidate_refusal, each side's refusal apart.

A model that declined (the answer's ``refusal``) had its refusal appended to its text in
``primary_output``/``candidate_output``, so a comparison could not tell a refusal from an
answer. Its words now go in ``*_refusal`` and the text keeps only what it answered; NULL is
"did not decline". Nullable, no default: the records already stored cannot know (their
refusals stay in their text). No index (no query filters by them; the summary counts them in
its one grouped scan).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("shadow_records", sa.Column("primary_refusal", sa.Text(), nullable=True))
    op.add_column("shadow_records", sa.Column("candidate_refusal", sa.Text(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("shadow_records") as batch:
        batch.drop_column("candidate_refusal")
        batch.drop_column("primary_refusal")
